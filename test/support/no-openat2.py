#!/usr/bin/env python3
"""Test only: runs a command as on a kernel without openat2(2).

    python3 no-openat2.py COMMAND [ARGS...]

A seccomp filter makes openat2 fail with ENOSYS, as a kernel before 5.6
does, for COMMAND and everything it starts; every other call is untouched.
"""

import ctypes
import os
import struct
import sys

NR_OPENAT2 = 437  # the same number on every architecture
ENOSYS = 38
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_RET_K = 0x06


def insn(code, jt, jf, k):
    return struct.pack("HBBI", code, jt, jf, k)


program = b"".join([
    insn(BPF_LD_W_ABS, 0, 0, 0),  # the syscall number (seccomp_data.nr)
    insn(BPF_JEQ_K, 0, 1, NR_OPENAT2),
    insn(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | ENOSYS),
    insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
])
filters = ctypes.create_string_buffer(program)


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


prog = SockFprog(len(program) // 8, ctypes.cast(filters, ctypes.c_void_p))
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
    sys.exit(f"no-openat2: seccomp failed: {os.strerror(ctypes.get_errno())}")
os.execvp(sys.argv[1], sys.argv[1:])
