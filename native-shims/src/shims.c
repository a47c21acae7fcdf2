// ferry's native shims: the few file-system calls Node cannot make itself.
//
// Every call on a tree works beneath a pinned root: a directory fd opened
// once by openRoot, and paths relative to it resolved by openat2(2) with
// RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS. No link,
// no "..", no absolute path, no magic /proc link can take a call outside the
// root, whatever is renamed or swapped in the tree meanwhile (DESIGN rule 6).
// Calls that name an entry (mkdir, unlink, rename, stat) resolve its parent
// that way and act on the last component with the *at(2) call, which never
// follows it.
//
//   openRoot(path)           -> fd: the pinned root (O_DIRECTORY, the last
//       component not followed); throws ENOSYS where the kernel has no openat2.
//   openAt(root, rel, flags, mode) -> fd, opened beneath root.
//   statAt(root, rel)        -> Buffer (one record, below) | null if absent.
//   mkdirAt(root, rel, mode), unlinkAt(root, rel, isDir)
//   renameAt(root, from, to, mode) -> number: renameat2; mode 0 replaces,
//       1 is RENAME_NOREPLACE (EEXIST if `to` exists), 2 RENAME_EXCHANGE
//       (both names must exist; they swap atomically); returns the stamp
//       digest of `to` after the move (-1 if it could not be read).
//   scanDir(root, rel, expect?) -> Promise<{ names, records, digest, complete }>
//       One directory listed and lstat'ed in a worker thread (getdents +
//       fstatat(AT_SYMLINK_NOFOLLOW)). `digest` summarises the listing (each
//       name, kind, and for non-directories the stamp digest). When it equals
//       `expect`, only the subdirectories are returned (complete: false):
//       nothing else changed since that digest was recorded.
//   unchangedDirs(root, rels, expects) -> Promise<Buffer>: many directories
//       scanned as scanDir does in one worker thread, one byte each: 1 when
//       the directory was listed and its digest equals its expected one.
//   syncfs(root)             -> Promise<void>: syncfs(2) on the file system
//       holding root: ferry's batched durability barrier.
//   fsyncAt(root, rels)      -> Promise<void>: fsync(2) of each file or
//       directory named (one gone since is skipped), for a small batch.
//   renameBatch(root, froms, tos) -> Promise<(number | Error)[]>: renameAt
//       with RENAME_NOREPLACE for many pairs in one worker thread.
//   copyBatch(srcRoot, dstRoot, jobs) -> Promise<(string | Error)[]>
//       Copies small files to new staged temporaries in one worker thread,
//       checking each source's stamp first; gives each one's xxHash64.
//   readBatch(root, jobs)    -> Promise<[Buffer, (string | Error)[]]>
//       Reads small files (stamps checked) into one buffer in one worker
//       thread, with each one's xxHash64: for sending them to a guest.
//   xxh64(buffer)            -> string (16 hex digits), the same hash.
//   peerUid(fd)              -> number: the uid at the other end of a unix
//       socket (SO_PEERCRED), for the daemon's control socket.
//
// Record layout (RECORD_SIZE bytes per entry, little endian), see
// src/fs/native.ts for the reader:
//   0  u32 kind (KIND_*)       4  u32 st_mode
//   8  f64 size
//   16 stamp: u64 dev, u64 ino, u64 size, u64 mtime_ns, u64 ctime_ns
//   56 f64 stamp digest: the top 52 bits of a splitmix64 chain over the five
//      stamp words (src/fs/stamp.ts computes the same in JavaScript)
// Entries are sorted by name, byte-wise.

#include <node_api.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define RECORD_SIZE 64

enum {
  KIND_FILE = 0,
  KIND_DIR = 1,
  KIND_SYMLINK = 2,
  KIND_SPECIAL = 3,     // fifo, socket, device
  KIND_UNREADABLE = 4,  // lstat failed with something other than ENOENT
  KIND_BAD_NAME = 5,    // name is not valid UTF-8
};

#define CHECK(call)                                   \
  do {                                                \
    if ((call) != napi_ok) {                          \
      napi_throw_error(env, NULL, "napi call failed: " #call); \
      return NULL;                                    \
    }                                                 \
  } while (0)

static int valid_utf8(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) { i++; continue; }
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return 0;
    if (i + len > n) return 0;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return 0;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    i += len;
  }
  return 1;
}

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static double stamp_digest(const uint64_t words[5]) {
  uint64_t h = 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < 5; i++) h = mix64(h ^ words[i]);
  return (double)(h >> 12);
}

static uint64_t name_hash(const char *name) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (const unsigned char *p = (const unsigned char *)name; *p; p++) h = (h ^ *p) * 0x100000001b3ull;
  return h;
}

static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static napi_value make_error(napi_env env, int err, const char *syscall, const char *path) {
  napi_value msg, code, error, errno_v, path_v, syscall_v;
  char text[512];
  const char *name = "EIO";
  switch (err) {
    case ENOENT: name = "ENOENT"; break;
    case ENOTDIR: name = "ENOTDIR"; break;
    case EACCES: name = "EACCES"; break;
    case EPERM: name = "EPERM"; break;
    case EEXIST: name = "EEXIST"; break;
    case EXDEV: name = "EXDEV"; break;
    case ELOOP: name = "ELOOP"; break;
    case EMFILE: name = "EMFILE"; break;
    case ENFILE: name = "ENFILE"; break;
    case ENOMEM: name = "ENOMEM"; break;
    case ENOSPC: name = "ENOSPC"; break;
    case EINVAL: name = "EINVAL"; break;
    case ENOSYS: name = "ENOSYS"; break;
    case EISDIR: name = "EISDIR"; break;
    case ENOTEMPTY: name = "ENOTEMPTY"; break;
    case EBUSY: name = "EBUSY"; break;
    case EAGAIN: name = "EAGAIN"; break;
    case EBADF: name = "EBADF"; break;
    default: break;
  }
  snprintf(text, sizeof text, "%s: %s, %s '%s'", name, strerror(err), syscall, path);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &error);
  napi_create_int32(env, -err, &errno_v);
  napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &path_v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_v);
  napi_set_named_property(env, error, "code", code);
  napi_set_named_property(env, error, "errno", errno_v);
  napi_set_named_property(env, error, "path", path_v);
  napi_set_named_property(env, error, "syscall", syscall_v);
  return error;
}

static char *get_path(napi_env env, napi_value value) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "path must be a string");
    return NULL;
  }
  char *buf = malloc(len + 1);
  if (!buf) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, value, buf, len + 1, &len);
  if (strlen(buf) != len) {
    free(buf);
    napi_throw_type_error(env, NULL, "path must not contain NUL");
    return NULL;
  }
  return buf;
}

// ---- beneath a pinned root -------------------------------------------------

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#define FERRY_RESOLVE_NO_MAGICLINKS 0x02
#define FERRY_RESOLVE_NO_SYMLINKS 0x04
#define FERRY_RESOLVE_BENEATH 0x08

// struct open_how of <linux/openat2.h>, spelled out so that the build does
// not depend on the kernel headers installed.
struct ferry_open_how {
  uint64_t flags;
  uint64_t mode;
  uint64_t resolve;
};

// beneath opens rel ("" is the root itself) relative to root, never leaving
// it and never following a link; -1 with errno on failure (EXDEV for a path
// that would leave the root, ELOOP for a link on the way).
static int beneath(int root, const char *rel, int flags, mode_t mode) {
  struct ferry_open_how how = {
      .flags = (uint64_t)(flags | O_CLOEXEC),
      .mode = (flags & O_CREAT) ? mode : 0,
      .resolve = FERRY_RESOLVE_BENEATH | FERRY_RESOLVE_NO_SYMLINKS | FERRY_RESOLVE_NO_MAGICLINKS,
  };
  const char *path = rel[0] ? rel : ".";
  for (int tries = 0;; tries++) {
    long fd = syscall(SYS_openat2, root, path, &how, sizeof how);
    if (fd >= 0) return (int)fd;
    // EAGAIN: a rename raced with the lookup; the kernel asks for a retry.
    if ((errno != EINTR && errno != EAGAIN) || tries >= 16) return -1;
  }
}

// dir_len is the length of rel's directory part, with its slash (0 for a
// name at the top).
static size_t dir_len(const char *rel) {
  const char *slash = strrchr(rel, '/');
  return slash ? (size_t)(slash - rel) + 1 : 0;
}

// valid_last: a last component the *at(2) calls may act on.
static int valid_last(const char *base) {
  return base[0] && strcmp(base, ".") != 0 && strcmp(base, "..") != 0;
}

// parent_of opens the directory holding rel beneath root and points *base at
// rel's last component; the caller closes the fd unless it is root.
static int parent_of(int root, const char *rel, const char **base) {
  size_t len = dir_len(rel);
  if (!valid_last(rel + len)) {
    errno = EINVAL;
    return -1;
  }
  *base = rel + len;
  if (len == 0) return root;
  char *dir = strndup(rel, len - 1);
  if (!dir) {
    errno = ENOMEM;
    return -1;
  }
  int fd = beneath(root, dir, O_PATH | O_DIRECTORY, 0);
  free(dir);
  return fd;
}

static void release(int fd, int root) {
  if (fd >= 0 && fd != root) close(fd);
}

static uint32_t kind_of(mode_t mode) {
  if (S_ISREG(mode)) return KIND_FILE;
  if (S_ISDIR(mode)) return KIND_DIR;
  if (S_ISLNK(mode)) return KIND_SYMLINK;
  return KIND_SPECIAL;
}

static void stamp_words(const struct stat *st, uint64_t words[5]) {
  words[0] = (uint64_t)st->st_dev;
  words[1] = (uint64_t)st->st_ino;
  words[2] = (uint64_t)st->st_size;
  words[3] = (uint64_t)st->st_mtim.tv_sec * 1000000000ull + (uint64_t)st->st_mtim.tv_nsec;
  words[4] = (uint64_t)st->st_ctim.tv_sec * 1000000000ull + (uint64_t)st->st_ctim.tv_nsec;
}

// fill_record writes one RECORD_SIZE record for st.
static void fill_record(unsigned char *r, const struct stat *st, uint32_t kind) {
  put_u32(r, kind);
  put_u32(r + 4, (uint32_t)st->st_mode);
  double size = (double)st->st_size;
  memcpy(r + 8, &size, 8);
  uint64_t words[5];
  stamp_words(st, words);
  for (int w = 0; w < 5; w++) put_u64(r + 16 + 8 * w, words[w]);
  double digest = stamp_digest(words);
  memcpy(r + 56, &digest, 8);
}

static int get_fd(napi_env env, napi_value value, int32_t *fd) {
  if (napi_get_value_int32(env, value, fd) != napi_ok || *fd < 0) {
    napi_throw_type_error(env, NULL, "expected a file descriptor");
    return 0;
  }
  return 1;
}

// args reads argc arguments, throwing when fewer were given.
static int args(napi_env env, napi_callback_info info, size_t argc, napi_value *argv, const char *usage) {
  size_t got = argc;
  if (napi_get_cb_info(env, info, &got, argv, NULL, NULL) != napi_ok || got < argc) {
    napi_throw_type_error(env, NULL, usage);
    return 0;
  }
  return 1;
}

// queue_work runs `execute` on `data` in a worker thread and then `complete`
// on the JavaScript thread, and returns the promise that `complete` settles
// through *deferred.
static napi_value queue_work(napi_env env, const char *name, napi_async_execute_callback execute, napi_async_complete_callback complete, void *data,
                             napi_deferred *deferred, napi_async_work *work) {
  napi_value promise, resource;
  CHECK(napi_create_promise(env, deferred, &promise));
  CHECK(napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource));
  CHECK(napi_create_async_work(env, NULL, resource, execute, complete, data, work));
  CHECK(napi_queue_async_work(env, *work));
  return promise;
}

// results_array makes the array of a batch's `count` outcomes, one per job
// from `outcome`; false if the array could not be made.
typedef napi_value (*outcome_fn)(napi_env env, void *job, size_t i);
static bool results_array(napi_env env, void *job, size_t count, outcome_fn outcome, napi_value *out) {
  if (napi_create_array_with_length(env, count, out) != napi_ok) return false;
  for (size_t i = 0; i < count; i++) napi_set_element(env, *out, (uint32_t)i, outcome(env, job, i));
  return true;
}

// settle_results resolves a batch's promise with its outcomes, or rejects it
// when they cannot be handed over (or the work was cancelled).
static void settle_results(napi_env env, napi_status status, napi_deferred deferred, void *job, size_t count, outcome_fn outcome, const char *syscall) {
  napi_value results;
  if (status != napi_ok || !results_array(env, job, count, outcome, &results)) napi_reject_deferred(env, deferred, make_error(env, EIO, syscall, ""));
  else napi_resolve_deferred(env, deferred, results);
}

static napi_value open_root(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  if (!args(env, info, 1, argv, "openRoot(path)")) return NULL;
  char *path = get_path(env, argv[0]);
  if (!path) return NULL;
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    napi_throw(env, make_error(env, errno, "open", path));
    free(path);
    return NULL;
  }
  // Every later call depends on openat2: a kernel without it (before 5.6)
  // is refused here, at the start, not at the first write.
  int probe = beneath(fd, "", O_PATH | O_DIRECTORY, 0);
  if (probe < 0) {
    int err = errno;
    close(fd);
    napi_throw(env, make_error(env, err, "openat2", path));
    free(path);
    return NULL;
  }
  close(probe);
  free(path);
  CHECK(napi_create_int32(env, fd, &result));
  return result;
}

static napi_value open_at(napi_env env, napi_callback_info info) {
  napi_value argv[4], result;
  int32_t root, flags, mode;
  if (!args(env, info, 4, argv, "openAt(root, rel, flags, mode)") || !get_fd(env, argv[0], &root)) return NULL;
  CHECK(napi_get_value_int32(env, argv[2], &flags));
  CHECK(napi_get_value_int32(env, argv[3], &mode));
  char *rel = get_path(env, argv[1]);
  if (!rel) return NULL;
  int fd = beneath(root, rel, flags, (mode_t)mode);
  if (fd < 0) napi_throw(env, make_error(env, errno, "openat2", rel));
  else napi_create_int32(env, fd, &result);
  free(rel);
  return fd < 0 ? NULL : result;
}

static napi_value stat_at(napi_env env, napi_callback_info info) {
  napi_value argv[2], result = NULL;
  int32_t root;
  if (!args(env, info, 2, argv, "statAt(root, rel)") || !get_fd(env, argv[0], &root)) return NULL;
  char *rel = get_path(env, argv[1]);
  if (!rel) return NULL;
  struct stat st;
  int err = 0;
  // O_PATH | O_NOFOLLOW opens a link itself rather than refusing it.
  int fd = beneath(root, rel, O_PATH | O_NOFOLLOW, 0);
  if (fd < 0) err = errno;
  else {
    if (fstat(fd, &st) != 0) err = errno;
    close(fd);
  }
  if (err == ENOENT) napi_get_null(env, &result);
  else if (err) napi_throw(env, make_error(env, err, "stat", rel));
  else {
    void *data;
    CHECK(napi_create_buffer(env, RECORD_SIZE, &data, &result));
    memset(data, 0, RECORD_SIZE);
    fill_record(data, &st, kind_of(st.st_mode));
  }
  free(rel);
  return result;
}

static napi_value mkdir_at(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t root, mode;
  if (!args(env, info, 3, argv, "mkdirAt(root, rel, mode)") || !get_fd(env, argv[0], &root)) return NULL;
  CHECK(napi_get_value_int32(env, argv[2], &mode));
  char *rel = get_path(env, argv[1]);
  if (!rel) return NULL;
  const char *base;
  int dir = parent_of(root, rel, &base);
  int rc = dir < 0 ? -1 : mkdirat(dir, base, (mode_t)mode);
  if (rc != 0) napi_throw(env, make_error(env, errno, "mkdirat", rel));
  release(dir, root);
  free(rel);
  return NULL;
}

static napi_value unlink_at(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t root;
  bool is_dir = false;
  if (!args(env, info, 3, argv, "unlinkAt(root, rel, isDir)") || !get_fd(env, argv[0], &root)) return NULL;
  CHECK(napi_get_value_bool(env, argv[2], &is_dir));
  char *rel = get_path(env, argv[1]);
  if (!rel) return NULL;
  const char *base;
  int dir = parent_of(root, rel, &base);
  int rc = dir < 0 ? -1 : unlinkat(dir, base, is_dir ? AT_REMOVEDIR : 0);
  if (rc != 0) napi_throw(env, make_error(env, errno, is_dir ? "rmdir" : "unlink", rel));
  release(dir, root);
  free(rel);
  return NULL;
}

// rename_beneath renames `from` to `to`, both beneath root, with renameat2's
// mode 0 (replace), 1 (RENAME_NOREPLACE) or 2 (RENAME_EXCHANGE); 0 or an
// errno. *digest is the stamp digest of what now has the name `to`, -1 if it
// cannot be read (the caller then stats it).
static int rename_beneath(int root, const char *from, const char *to, int mode, double *digest) {
  const char *from_base, *to_base;
  int from_dir = parent_of(root, from, &from_base);
  // A staged file is renamed within its directory: one lookup serves both.
  int to_dir;
  if (from_dir >= 0 && dir_len(from) == dir_len(to) && strncmp(from, to, dir_len(to)) == 0) {
    to_base = to + dir_len(to);
    to_dir = from_dir;
    if (!valid_last(to_base)) {
      to_dir = -1;
      errno = EINVAL;
    }
  } else {
    to_dir = from_dir < 0 ? -1 : parent_of(root, to, &to_base);
  }
  int err = 0;
  *digest = -1;
  if (to_dir < 0) err = errno;
  else if (syscall(SYS_renameat2, from_dir, from_base, to_dir, to_base, mode == 1 ? RENAME_NOREPLACE : mode == 2 ? RENAME_EXCHANGE : 0) != 0) err = errno;
  else {
    struct stat st;
    if (fstatat(to_dir, to_base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
      uint64_t words[5];
      stamp_words(&st, words);
      *digest = stamp_digest(words);
    }
  }
  if (to_dir != from_dir) release(to_dir, root);
  release(from_dir, root);
  return err;
}

static napi_value rename_at(napi_env env, napi_callback_info info) {
  napi_value argv[4], result = NULL;
  int32_t root;
  int32_t mode = 0;
  if (!args(env, info, 4, argv, "renameAt(root, from, to, mode)") || !get_fd(env, argv[0], &root)) return NULL;
  CHECK(napi_get_value_int32(env, argv[3], &mode));
  if (mode < 0 || mode > 2) {
    napi_throw_range_error(env, NULL, "renameAt: mode is 0 (replace), 1 (no replace) or 2 (exchange)");
    return NULL;
  }
  char *from = get_path(env, argv[1]);
  if (!from) return NULL;
  char *to = get_path(env, argv[2]);
  if (!to) {
    free(from);
    return NULL;
  }
  double digest;
  int err = rename_beneath(root, from, to, mode, &digest);
  if (err) napi_throw(env, make_error(env, err, "renameat2", to));
  else napi_create_double(env, digest, &result);
  free(from);
  free(to);
  return result;
}

// ---- renameBatch ------------------------------------------------------------
// renameBatch(root, froms, tos) -> Promise<(number | Error)[]>: renameAt with
// RENAME_NOREPLACE for each pair in turn, in one worker thread; each result
// is the new name's stamp digest (-1 if unread) or that rename's error.

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int root;
  size_t count;
  char **froms;
  char **tos;
  int *errs;
  double *digests;
} rename_job;

static void rename_job_free(rename_job *job) {
  for (size_t i = 0; i < job->count; i++) {
    free(job->froms[i]);
    free(job->tos[i]);
  }
  free(job->froms);
  free(job->tos);
  free(job->errs);
  free(job->digests);
  free(job);
}

static void rename_execute(napi_env env, void *data) {
  (void)env;
  rename_job *job = data;
  for (size_t i = 0; i < job->count; i++) job->errs[i] = rename_beneath(job->root, job->froms[i], job->tos[i], 1, &job->digests[i]);
}

static napi_value rename_outcome(napi_env env, void *data, size_t i) {
  rename_job *job = data;
  napi_value item;
  if (job->errs[i]) return make_error(env, job->errs[i], "renameat2", job->tos[i]);
  napi_create_double(env, job->digests[i], &item);
  return item;
}

static void rename_complete(napi_env env, napi_status status, void *data) {
  rename_job *job = data;
  settle_results(env, status, job->deferred, job, job->count, rename_outcome, "renameat2");
  napi_delete_async_work(env, job->work);
  rename_job_free(job);
}

// batch_args reads the arguments (root, a, b) of a batch call whose arrays
// a and b go together, throwing `usage` unless they have the same length.
static int batch_args(napi_env env, napi_callback_info info, napi_value *argv, const char *usage, int32_t *root, uint32_t *count) {
  uint32_t other = 0;
  if (!args(env, info, 3, argv, usage) || !get_fd(env, argv[0], root)) return 0;
  if (napi_get_array_length(env, argv[1], count) != napi_ok || napi_get_array_length(env, argv[2], &other) != napi_ok || *count != other) {
    napi_throw_type_error(env, NULL, usage);
    return 0;
  }
  return 1;
}

// element_path reads element i of an array of paths (NULL with an exception pending if it cannot).
static char *element_path(napi_env env, napi_value array, uint32_t i) {
  napi_value item;
  if (napi_get_element(env, array, i, &item) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected an array of paths");
    return NULL;
  }
  return get_path(env, item);
}

// path_pair reads element i of two parallel arrays of paths.
static int path_pair(napi_env env, napi_value a, napi_value b, uint32_t i, char **x, char **y) {
  *x = element_path(env, a, i);
  if (!*x) return 0;
  *y = element_path(env, b, i);
  if (!*y) {
    free(*x);
    return 0;
  }
  return 1;
}

static napi_value rename_batch(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t root;
  uint32_t count = 0;
  if (!batch_args(env, info, argv, "renameBatch(root, froms, tos): froms and tos are arrays of paths of the same length", &root, &count)) return NULL;
  rename_job *job = calloc(1, sizeof *job);
  size_t n = count ? count : 1;
  if (job) {
    job->froms = calloc(n, sizeof *job->froms);
    job->tos = calloc(n, sizeof *job->tos);
    job->errs = calloc(n, sizeof *job->errs);
    job->digests = calloc(n, sizeof *job->digests);
  }
  if (!job || !job->froms || !job->tos || !job->errs || !job->digests) {
    if (job) rename_job_free(job);
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  job->root = root;
  for (uint32_t i = 0; i < count; i++) {
    if (!path_pair(env, argv[1], argv[2], i, &job->froms[i], &job->tos[i])) {
      rename_job_free(job);
      return NULL;
    }
    job->count = i + 1;
  }
  return queue_work(env, "ferry:renameBatch", rename_execute, rename_complete, job, &job->deferred, &job->work);
}

// ---- scanDir -------------------------------------------------------------

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int root;
  char *path;
  int err;
  size_t count;
  size_t cap;
  char **names;          // each malloc'ed
  size_t *name_lens;
  unsigned char *records;  // count * RECORD_SIZE
  int has_expect;
  double expect;
  double digest;
  int complete;
} scan_job;

static int scan_push(scan_job *job, const char *name, size_t len) {
  if (job->count == job->cap) {
    size_t cap = job->cap ? job->cap * 2 : 64;
    char **names = realloc(job->names, cap * sizeof *names);
    if (!names) return -1;
    job->names = names;
    size_t *lens = realloc(job->name_lens, cap * sizeof *lens);
    if (!lens) return -1;
    job->name_lens = lens;
    unsigned char *records = realloc(job->records, cap * RECORD_SIZE);
    if (!records) return -1;
    job->records = records;
    job->cap = cap;
  }
  char *copy = malloc(len + 1);
  if (!copy) return -1;
  memcpy(copy, name, len + 1);
  job->names[job->count] = copy;
  job->name_lens[job->count] = len;
  memset(job->records + job->count * RECORD_SIZE, 0, RECORD_SIZE);
  job->count++;
  return 0;
}

// Sorts a listing by name, byte-wise (for valid UTF-8, code point order).
static int by_name_r(const void *a, const void *b, void *arg) {
  const scan_job *job = arg;
  size_t i = *(const size_t *)a, j = *(const size_t *)b;
  return strcmp(job->names[i], job->names[j]);
}

static void scan_sort(scan_job *job) {
  if (job->count < 2) return;
  size_t *order = malloc(job->count * sizeof *order);
  char **names = malloc(job->count * sizeof *names);
  size_t *lens = malloc(job->count * sizeof *lens);
  unsigned char *records = malloc(job->count * RECORD_SIZE);
  if (!order || !names || !lens || !records) {
    free(order); free(names); free(lens); free(records);
    return;  // unsorted: the reader sorts what it must
  }
  for (size_t i = 0; i < job->count; i++) order[i] = i;
  qsort_r(order, job->count, sizeof *order, by_name_r, job);
  for (size_t k = 0; k < job->count; k++) {
    size_t i = order[k];
    names[k] = job->names[i];
    lens[k] = job->name_lens[i];
    memcpy(records + k * RECORD_SIZE, job->records + i * RECORD_SIZE, RECORD_SIZE);
  }
  free(job->names); free(job->name_lens); free(job->records); free(order);
  job->names = names;
  job->name_lens = lens;
  job->records = records;
  job->cap = job->count;
}

// scan_list lists and lstats job->path beneath job->root into job, sorted,
// and computes its digest; job->err is set when it cannot.
static void scan_list(scan_job *job) {
  int dfd = beneath(job->root, job->path, O_RDONLY | O_DIRECTORY, 0);
  if (dfd < 0) { job->err = errno; return; }
  DIR *dir = fdopendir(dfd);
  if (!dir) { job->err = errno; close(dfd); return; }
  struct dirent *ent;
  errno = 0;
  while ((ent = readdir(dir)) != NULL) {
    const char *name = ent->d_name;
    if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
    size_t len = strlen(name);
    struct stat st;
    uint32_t kind;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) { errno = 0; continue; }  // vanished since getdents
      kind = KIND_UNREADABLE;
      memset(&st, 0, sizeof st);
    } else kind = kind_of(st.st_mode);
    if (!valid_utf8((const unsigned char *)name, len)) kind = KIND_BAD_NAME;
    if (scan_push(job, name, len) != 0) { job->err = ENOMEM; break; }
    fill_record(job->records + (job->count - 1) * RECORD_SIZE, &st, kind);
    errno = 0;
  }
  if (!job->err && errno != 0) job->err = errno;
  closedir(dir);
  if (job->err) return;
  scan_sort(job);
  uint64_t h = 0x9E3779B97F4A7C15ull ^ job->count;
  for (size_t i = 0; i < job->count; i++) {
    const unsigned char *r = job->records + i * RECORD_SIZE;
    uint32_t kind = r[0] | (r[1] << 8) | ((uint32_t)r[2] << 16) | ((uint32_t)r[3] << 24);
    h = mix64(h ^ name_hash(job->names[i]));
    h = mix64(h ^ kind);
    if (kind != KIND_DIR) {
      double d;
      memcpy(&d, r + 56, 8);
      h = mix64(h ^ (uint64_t)d);
    }
  }
  job->digest = (double)(h >> 12);
  job->complete = 1;
}

static void scan_execute(napi_env env, void *data) {
  (void)env;
  scan_job *job = data;
  scan_list(job);
  if (job->err) return;
  if (job->has_expect && job->digest == job->expect) {
    // Unchanged since the digest was recorded: keep only the subdirectories.
    size_t kept = 0;
    for (size_t i = 0; i < job->count; i++) {
      const unsigned char *r = job->records + i * RECORD_SIZE;
      if (r[0] == KIND_DIR && r[1] == 0 && r[2] == 0 && r[3] == 0) {
        if (kept != i) {
          job->names[kept] = job->names[i];
          job->name_lens[kept] = job->name_lens[i];
          memmove(job->records + kept * RECORD_SIZE, r, RECORD_SIZE);
        }
        kept++;
      } else {
        free(job->names[i]);
      }
    }
    job->count = kept;
    job->complete = 0;
  }
}

static void scan_free(scan_job *job) {
  for (size_t i = 0; i < job->count; i++) free(job->names[i]);
  free(job->names);
  free(job->name_lens);
  free(job->records);
  free(job->path);
  free(job);
}

static void scan_complete(napi_env env, napi_status status, void *data) {
  scan_job *job = data;
  napi_value result;
  if (status != napi_ok) {
    napi_value msg, error;
    napi_create_string_utf8(env, "scanDir was cancelled", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &error);
    napi_reject_deferred(env, job->deferred, error);
  } else if (job->err) {
    napi_reject_deferred(env, job->deferred, make_error(env, job->err, "scandir", job->path));
  } else {
    napi_value names, records;
    napi_create_array_with_length(env, job->count, &names);
    for (size_t i = 0; i < job->count; i++) {
      napi_value s;
      napi_create_string_utf8(env, job->names[i], job->name_lens[i], &s);
      napi_set_element(env, names, (uint32_t)i, s);
    }
    void *copy = NULL;
    napi_create_buffer_copy(env, job->count * RECORD_SIZE, job->records ? (void *)job->records : (void *)"", &copy, &records);
    napi_create_object(env, &result);
    napi_set_named_property(env, result, "names", names);
    napi_set_named_property(env, result, "records", records);
    napi_value digest, complete;
    napi_create_double(env, job->digest, &digest);
    napi_get_boolean(env, job->complete != 0, &complete);
    napi_set_named_property(env, result, "digest", digest);
    napi_set_named_property(env, result, "complete", complete);
    napi_resolve_deferred(env, job->deferred, result);
  }
  napi_delete_async_work(env, job->work);
  scan_free(job);
}

static napi_value scan_dir(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t root;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "scanDir(root, rel, expect?)");
    return NULL;
  }
  if (!get_fd(env, argv[0], &root)) return NULL;
  char *path = get_path(env, argv[1]);
  if (!path) return NULL;
  scan_job *job = calloc(1, sizeof *job);
  if (!job) {
    free(path);
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  job->root = root;
  job->path = path;
  if (argc >= 3) {
    napi_valuetype type;
    CHECK(napi_typeof(env, argv[2], &type));
    if (type == napi_number) {
      CHECK(napi_get_value_double(env, argv[2], &job->expect));
      job->has_expect = 1;
    }
  }
  return queue_work(env, "ferry:scanDir", scan_execute, scan_complete, job, &job->deferred, &job->work);
}

// ---- unchangedDirs ---------------------------------------------------------
// Many directories scanned as scanDir does, in one worker thread, each only
// compared with its expected digest: nothing of their listings is kept.

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int root;
  size_t count;
  char **paths;
  double *expects;
  unsigned char *same;  // 1: listed, and its digest is the expected one
} unchanged_job;

static void unchanged_job_free(unchanged_job *job) {
  for (size_t i = 0; i < job->count; i++) free(job->paths[i]);
  free(job->paths);
  free(job->expects);
  free(job->same);
  free(job);
}

static void unchanged_execute(napi_env env, void *data) {
  (void)env;
  unchanged_job *job = data;
  scan_job scan;
  memset(&scan, 0, sizeof scan);
  scan.root = job->root;
  for (size_t i = 0; i < job->count; i++) {
    scan.path = job->paths[i];
    scan.err = 0;
    scan_list(&scan);
    job->same[i] = scan.err == 0 && scan.digest == job->expects[i];
    for (size_t k = 0; k < scan.count; k++) free(scan.names[k]);
    scan.count = 0;
  }
  free(scan.names);
  free(scan.name_lens);
  free(scan.records);
}

static void unchanged_complete(napi_env env, napi_status status, void *data) {
  unchanged_job *job = data;
  napi_value result;
  void *copy = NULL;
  if (status != napi_ok || napi_create_buffer_copy(env, job->count, job->count ? (void *)job->same : (void *)"", &copy, &result) != napi_ok) {
    napi_reject_deferred(env, job->deferred, make_error(env, EIO, "scandir", ""));
  } else {
    napi_resolve_deferred(env, job->deferred, result);
  }
  napi_delete_async_work(env, job->work);
  unchanged_job_free(job);
}

static napi_value unchanged_dirs(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t root;
  uint32_t count = 0;
  if (!batch_args(env, info, argv, "unchangedDirs(root, dirs, expects): an array of paths and one of numbers, of the same length", &root, &count)) return NULL;
  unchanged_job *job = calloc(1, sizeof *job);
  size_t n = count ? count : 1;
  if (job) {
    job->paths = calloc(n, sizeof *job->paths);
    job->expects = calloc(n, sizeof *job->expects);
    job->same = calloc(n, 1);
  }
  if (!job || !job->paths || !job->expects || !job->same) {
    if (job) unchanged_job_free(job);
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  job->root = root;
  for (uint32_t i = 0; i < count; i++) {
    char *path = element_path(env, argv[1], i);
    if (!path) {
      unchanged_job_free(job);
      return NULL;
    }
    job->paths[i] = path;
    job->count = i + 1;
    napi_value item;
    if (napi_get_element(env, argv[2], i, &item) != napi_ok || napi_get_value_double(env, item, &job->expects[i]) != napi_ok) {
      unchanged_job_free(job);
      napi_throw_type_error(env, NULL, "unchangedDirs: expects must be numbers");
      return NULL;
    }
  }
  return queue_work(env, "ferry:unchangedDirs", unchanged_execute, unchanged_complete, job, &job->deferred, &job->work);
}

// ---- syncfs and fsyncAt ------------------------------------------------------
// One async job for both: syncfs(2) of root's file system when no paths are
// given, else fsync(2) of each path beneath root (a path gone since is
// skipped: its directory, also named, holds the rename or removal).

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int root;
  char **paths;
  size_t count;
  int err;
  char *failed;  // the path whose fsync failed
} sync_job;

static void sync_execute(napi_env env, void *data) {
  (void)env;
  sync_job *job = data;
  if (job->count == 0) {
    if (syncfs(job->root) != 0) job->err = errno;
    return;
  }
  for (size_t i = 0; i < job->count && !job->err; i++) {
    int fd = beneath(job->root, job->paths[i], O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0);
    if (fd < 0) {
      if (errno != ENOENT) { job->err = errno; job->failed = job->paths[i]; }
      continue;
    }
    if (fsync(fd) != 0) { job->err = errno; job->failed = job->paths[i]; }
    close(fd);
  }
}

static void sync_complete(napi_env env, napi_status status, void *data) {
  sync_job *job = data;
  if (status == napi_ok && !job->err) {
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    napi_resolve_deferred(env, job->deferred, undefined);
  } else {
    napi_reject_deferred(env, job->deferred, make_error(env, job->err ? job->err : EIO, job->failed ? "fsync" : "syncfs", job->failed ? job->failed : ""));
  }
  napi_delete_async_work(env, job->work);
  for (size_t i = 0; i < job->count; i++) free(job->paths[i]);
  free(job->paths);
  free(job);
}

static napi_value sync_fs(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t root;
  if (!args(env, info, 1, argv, "syncfs(root)") || !get_fd(env, argv[0], &root)) return NULL;
  sync_job *job = calloc(1, sizeof *job);
  if (!job) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  job->root = root;
  return queue_work(env, "ferry:sync", sync_execute, sync_complete, job, &job->deferred, &job->work);
}

static napi_value fsync_at(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t root;
  uint32_t count = 0;
  if (!args(env, info, 2, argv, "fsyncAt(root, rels)") || !get_fd(env, argv[0], &root)) return NULL;
  if (napi_get_array_length(env, argv[1], &count) != napi_ok) {
    napi_throw_type_error(env, NULL, "fsyncAt: rels must be an array of paths");
    return NULL;
  }
  sync_job *job = calloc(1, sizeof *job);
  char **paths = calloc(count ? count : 1, sizeof *paths);
  if (!job || !paths) {
    free(job);
    free(paths);
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  job->root = root;
  job->paths = paths;
  for (uint32_t i = 0; i < count; i++) {
    char *path = element_path(env, argv[1], i);
    if (!path) {
      for (size_t k = 0; k < job->count; k++) free(paths[k]);
      free(paths);
      free(job);
      return NULL;
    }
    paths[job->count++] = path;
  }
  // No paths at all: nothing was written, nothing to make durable.
  if (count == 0) {
    free(paths);
    free(job);
    napi_value promise;
    napi_deferred deferred;
    napi_value undefined;
    CHECK(napi_create_promise(env, &deferred, &promise));
    napi_get_undefined(env, &undefined);
    napi_resolve_deferred(env, deferred, undefined);
    return promise;
  }
  return queue_work(env, "ferry:sync", sync_execute, sync_complete, job, &job->deferred, &job->work);
}

// ---- xxHash64 (seed 0), one shot -------------------------------------------
// The same function as xxhash-wasm's h64, for files copied in C.

#define P64_1 0x9E3779B185EBCA87ull
#define P64_2 0xC2B2AE3D27D4EB4Full
#define P64_3 0x165667B19E3779F9ull
#define P64_4 0x85EBCA77C2B2AE63ull
#define P64_5 0x27D4EB2F165667C5ull

static uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static uint64_t rd64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }  // little-endian hosts
static uint32_t rd32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t xround(uint64_t acc, uint64_t input) { acc += input * P64_2; acc = rotl64(acc, 31); return acc * P64_1; }
static uint64_t xmerge(uint64_t acc, uint64_t val) { acc ^= xround(0, val); return acc * P64_1 + P64_4; }

static uint64_t xxh64(const unsigned char *p, size_t len) {
  const unsigned char *end = p + len;
  uint64_t h;
  if (len >= 32) {
    uint64_t v1 = P64_1 + P64_2, v2 = P64_2, v3 = 0, v4 = 0 - P64_1;
    const unsigned char *limit = end - 32;
    do {
      v1 = xround(v1, rd64(p)); v2 = xround(v2, rd64(p + 8));
      v3 = xround(v3, rd64(p + 16)); v4 = xround(v4, rd64(p + 24));
      p += 32;
    } while (p <= limit);
    h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
    h = xmerge(h, v1); h = xmerge(h, v2); h = xmerge(h, v3); h = xmerge(h, v4);
  } else {
    h = P64_5;
  }
  h += (uint64_t)len;
  while (p + 8 <= end) { h ^= xround(0, rd64(p)); h = rotl64(h, 27) * P64_1 + P64_4; p += 8; }
  if (p + 4 <= end) { h ^= (uint64_t)rd32(p) * P64_1; h = rotl64(h, 23) * P64_2 + P64_3; p += 4; }
  while (p < end) { h ^= (*p) * P64_5; h = rotl64(h, 11) * P64_1; p++; }
  h ^= h >> 33; h *= P64_2; h ^= h >> 29; h *= P64_3; h ^= h >> 32;
  return h;
}

static napi_value xxh64_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *data = NULL;
  size_t len = 0;
  if (argc < 1 || napi_get_buffer_info(env, argv[0], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "xxh64(buffer) needs a Buffer");
    return NULL;
  }
  char hex[17];
  snprintf(hex, sizeof hex, "%016llx", (unsigned long long)xxh64(data, len));
  CHECK(napi_create_string_utf8(env, hex, 16, &out));
  return out;
}

// ---- copyBatch -------------------------------------------------------------
// copyBatch(srcRoot, dstRoot, jobs) -> Promise<(string | Error)[]>: each job
// is [src, temp, size, stamp | null]. In one worker thread, for each job in
// turn: read a small regular file of the source tree (not following links)
// after checking it still has the scanned stamp and size, write it to a new
// file `temp` of the destination tree (O_EXCL, mode 0666 less the umask) and
// give its xxHash64 (16 hex digits). A job whose source is not what was
// scanned gives an Error with code ECHANGED; any other failure its errno
// error. One call for many files spares a thread hand-off per file.

typedef struct {
  char *src;
  char *temp;
  size_t size;
  int has_stamp;
  unsigned char stamp[40];
  int err;
  const char *changed;  // why the source is not what was scanned
  uint64_t hash;
} copy_item;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int src_root;
  int dst_root;  // -1 for readBatch
  size_t count;
  copy_item *items;
  unsigned char *data;  // readBatch: the contents read, one after another
  size_t used;
} copy_job;

// read_source reads item's source (job->size bytes) into dst after checking
// it is still the regular file scanned (size, and stamp when given); 0 on
// success, else -1 with job->err or job->changed set.
static int read_source(int src_root, copy_item *job, unsigned char *dst) {
  int in = beneath(src_root, job->src, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0);
  if (in < 0) {
    job->err = errno;
    if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) job->changed = "deleted or replaced by a link";
    return -1;
  }
  struct stat st;
  if (fstat(in, &st) != 0) { job->err = errno; close(in); return -1; }
  if (!S_ISREG(st.st_mode) || (size_t)st.st_size != job->size) {
    job->changed = "no longer the file that was scanned"; close(in); return -1;
  }
  if (job->has_stamp) {
    unsigned char now[40];
    uint64_t words[5];
    stamp_words(&st, words);
    for (int w = 0; w < 5; w++) put_u64(now + 8 * w, words[w]);
    if (memcmp(now, job->stamp, 40) != 0) { job->changed = "modified since it was scanned"; close(in); return -1; }
  }
  size_t filled = 0;
  while (filled < job->size) {
    ssize_t n = pread(in, dst + filled, job->size - filled, (off_t)filled);
    if (n < 0) { if (errno == EINTR) continue; job->err = errno; break; }
    if (n == 0) { job->changed = "shrank while being read"; break; }
    filled += (size_t)n;
  }
  close(in);
  return job->err || job->changed ? -1 : 0;
}

// copy_one copies one item, reading through *buf (grown as needed).
static void copy_one(int src_root, int dst_root, copy_item *job, unsigned char **buf, size_t *cap) {
  if (*cap < job->size || !*buf) {
    free(*buf);
    *cap = job->size > 4096 ? job->size : 4096;
    *buf = malloc(*cap);
    if (!*buf) { *cap = 0; job->err = ENOMEM; return; }
  }
  if (read_source(src_root, job, *buf) != 0) return;
  int out = beneath(dst_root, job->temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0666);
  if (out < 0) {
    job->err = errno;
    if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) job->changed = "its directory changed";
    return;
  }
  size_t written = 0;
  while (written < job->size) {
    ssize_t n = write(out, *buf + written, job->size - written);
    if (n < 0) { if (errno == EINTR) continue; job->err = errno; break; }
    written += (size_t)n;
  }
  // No write-back is started here: the batch barrier (syncfs) writes the
  // batch at once, while the next batch is copied, and in fewer, larger
  // requests than one per file.
  if (close(out) != 0 && !job->err) job->err = errno;
  if (job->err) {
    const char *base;
    int dir = parent_of(dst_root, job->temp, &base);
    if (dir >= 0) unlinkat(dir, base, 0);
    release(dir, dst_root);
  } else {
    job->hash = xxh64(*buf, job->size);
  }
}

static void copy_execute(napi_env env, void *data) {
  (void)env;
  copy_job *job = data;
  unsigned char *buf = NULL;
  size_t cap = 0;
  for (size_t i = 0; i < job->count; i++) copy_one(job->src_root, job->dst_root, &job->items[i], &buf, &cap);
  free(buf);
}

static void copy_job_free(copy_job *job) {
  for (size_t i = 0; i < job->count; i++) {
    free(job->items[i].src);
    free(job->items[i].temp);
  }
  free(job->items);
  free(job->data);
  free(job);
}

static napi_value copy_result(napi_env env, const copy_item *item) {
  napi_value result;
  if (item->changed) {
    napi_value msg, code;
    napi_create_string_utf8(env, item->changed, NAPI_AUTO_LENGTH, &msg);
    napi_create_string_utf8(env, "ECHANGED", NAPI_AUTO_LENGTH, &code);
    napi_create_error(env, code, msg, &result);
    napi_set_named_property(env, result, "code", code);
  } else if (item->err) {
    result = make_error(env, item->err, "copy", item->src);
  } else {
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)item->hash);
    napi_create_string_utf8(env, hex, 16, &result);
  }
  return result;
}

static napi_value copy_outcome(napi_env env, void *data, size_t i) {
  return copy_result(env, &((copy_job *)data)->items[i]);
}

static void copy_complete(napi_env env, napi_status status, void *data) {
  copy_job *job = data;
  settle_results(env, status, job->deferred, job, job->count, copy_outcome, "copy");
  napi_delete_async_work(env, job->work);
  copy_job_free(job);
}

// batch_item_from reads one job, [src, temp, size, stamp | null] (or, with
// no temp, [src, size, stamp | null]), throwing on a bad one.
static int batch_item_from(napi_env env, napi_value value, copy_item *item, bool with_temp) {
  napi_value src, temp = NULL, size_v, stamp_v;
  uint32_t at = 0;
  bool is_array = false;
  if (napi_is_array(env, value, &is_array) != napi_ok || !is_array || napi_get_element(env, value, at++, &src) != napi_ok ||
      (with_temp && napi_get_element(env, value, at++, &temp) != napi_ok) || napi_get_element(env, value, at++, &size_v) != napi_ok ||
      napi_get_element(env, value, at, &stamp_v) != napi_ok) {
    napi_throw_type_error(env, NULL, with_temp ? "copyBatch: each job is [src, temp, size, stamp | null]" : "readBatch: each job is [src, size, stamp | null]");
    return 0;
  }
  double size = -1;
  if (napi_get_value_double(env, size_v, &size) != napi_ok || !(size >= 0 && size <= (double)(1 << 30))) {
    napi_throw_range_error(env, NULL, "copyBatch/readBatch: size out of range");
    return 0;
  }
  item->size = (size_t)size;
  void *stamp = NULL;
  size_t stamp_len = 0;
  napi_valuetype type;
  if (napi_typeof(env, stamp_v, &type) == napi_ok && type == napi_object && napi_get_buffer_info(env, stamp_v, &stamp, &stamp_len) == napi_ok && stamp_len == 40) {
    memcpy(item->stamp, stamp, 40);
    item->has_stamp = 1;
  }
  item->src = get_path(env, src);
  if (!item->src) return 0;
  if (!with_temp) return 1;
  item->temp = get_path(env, temp);
  return item->temp != NULL;
}

// batch_from reads the jobs array argv[at] into a new job, or throws and returns NULL.
static copy_job *batch_from(napi_env env, napi_value jobs, bool with_temp) {
  uint32_t count = 0;
  if (napi_get_array_length(env, jobs, &count) != napi_ok) {
    napi_throw_type_error(env, NULL, "copyBatch/readBatch: jobs must be an array");
    return NULL;
  }
  copy_job *job = calloc(1, sizeof *job);
  if (job) job->items = calloc(count ? count : 1, sizeof *job->items);
  if (!job || !job->items) {
    free(job);
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  for (uint32_t i = 0; i < count; i++) {
    napi_value value;
    job->count = i + 1;
    if (napi_get_element(env, jobs, i, &value) != napi_ok || !batch_item_from(env, value, &job->items[i], with_temp)) {
      copy_job_free(job);
      return NULL;
    }
  }
  return job;
}

static napi_value copy_batch(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t src_root, dst_root;
  if (!args(env, info, 3, argv, "copyBatch(srcRoot, dstRoot, jobs)")) return NULL;
  if (!get_fd(env, argv[0], &src_root) || !get_fd(env, argv[1], &dst_root)) return NULL;
  copy_job *job = batch_from(env, argv[2], true);
  if (!job) return NULL;
  job->src_root = src_root;
  job->dst_root = dst_root;
  return queue_work(env, "ferry:copyBatch", copy_execute, copy_complete, job, &job->deferred, &job->work);
}

// ---- readBatch -------------------------------------------------------------
// readBatch(root, jobs) -> Promise<[Buffer, (string | Error)[]]>: each job is
// [path, size, stamp | null]. In one worker thread, reads each small regular
// file of the tree (not following links) after checking it still has the
// scanned stamp and size. The Buffer holds the contents of the files read,
// one after another in job order; each job gives its xxHash64 (16 hex
// digits), or an Error (code ECHANGED when the file is not what was
// scanned) and no bytes. For sending small files to a guest in one message.

#define READ_BATCH_MAX ((size_t)256 << 20)

static void read_execute(napi_env env, void *data) {
  (void)env;
  copy_job *job = data;
  size_t total = 0;
  for (size_t i = 0; i < job->count; i++) total += job->items[i].size;
  job->data = malloc(total ? total : 1);
  if (!job->data) {
    for (size_t i = 0; i < job->count; i++) job->items[i].err = ENOMEM;
    return;
  }
  for (size_t i = 0; i < job->count; i++) {
    copy_item *item = &job->items[i];
    if (read_source(job->src_root, item, job->data + job->used) != 0) continue;
    item->hash = xxh64(job->data + job->used, item->size);
    job->used += item->size;
  }
}

static void free_data(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static void read_complete(napi_env env, napi_status status, void *data) {
  copy_job *job = data;
  napi_value results, bytes, pair;
  bool ok = status == napi_ok && results_array(env, job, job->count, copy_outcome, &results);
  if (ok && job->used > 0) {
    ok = napi_create_external_buffer(env, job->used, job->data, free_data, NULL, &bytes) == napi_ok;
    if (ok) job->data = NULL;  // the Buffer owns it now
  } else if (ok) {
    ok = napi_create_buffer(env, 0, NULL, &bytes) == napi_ok;
  }
  ok = ok && napi_create_array_with_length(env, 2, &pair) == napi_ok;
  if (!ok) {
    napi_reject_deferred(env, job->deferred, make_error(env, EIO, "read", ""));
  } else {
    napi_set_element(env, pair, 0, bytes);
    napi_set_element(env, pair, 1, results);
    napi_resolve_deferred(env, job->deferred, pair);
  }
  napi_delete_async_work(env, job->work);
  copy_job_free(job);
}

static napi_value read_batch(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t root;
  if (!args(env, info, 2, argv, "readBatch(root, jobs)")) return NULL;
  if (!get_fd(env, argv[0], &root)) return NULL;
  copy_job *job = batch_from(env, argv[1], false);
  if (!job) return NULL;
  size_t total = 0;
  bool too_much = false;
  for (size_t i = 0; i < job->count && !too_much; i++) {
    too_much = job->items[i].size > READ_BATCH_MAX - total;
    total += job->items[i].size;
  }
  if (too_much) {
    copy_job_free(job);
    napi_throw_range_error(env, NULL, "readBatch: more than 256 MiB at once");
    return NULL;
  }
  job->src_root = root;
  job->dst_root = -1;
  return queue_work(env, "ferry:readBatch", read_execute, read_complete, job, &job->deferred, &job->work);
}

// ---- peerUid -----------------------------------------------------------------
// peerUid(fd) -> number: the uid of the process at the other end of a
// connected unix socket (SO_PEERCRED), for the daemon's control socket.

static napi_value peer_uid(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd = -1;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "peerUid(fd) needs a file descriptor");
    return NULL;
  }
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    napi_throw(env, make_error(env, errno, "getsockopt", "SO_PEERCRED"));
    return NULL;
  }
  CHECK(napi_create_uint32(env, (uint32_t)cred.uid, &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"openRoot", NULL, open_root, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openAt", NULL, open_at, NULL, NULL, NULL, napi_enumerable, NULL},
      {"statAt", NULL, stat_at, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mkdirAt", NULL, mkdir_at, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unlinkAt", NULL, unlink_at, NULL, NULL, NULL, napi_enumerable, NULL},
      {"renameAt", NULL, rename_at, NULL, NULL, NULL, napi_enumerable, NULL},
      {"scanDir", NULL, scan_dir, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unchangedDirs", NULL, unchanged_dirs, NULL, NULL, NULL, napi_enumerable, NULL},
      {"syncfs", NULL, sync_fs, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fsyncAt", NULL, fsync_at, NULL, NULL, NULL, napi_enumerable, NULL},
      {"copyBatch", NULL, copy_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"renameBatch", NULL, rename_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"readBatch", NULL, read_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"xxh64", NULL, xxh64_js, NULL, NULL, NULL, napi_enumerable, NULL},
      {"peerUid", NULL, peer_uid, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  napi_value record_size;
  CHECK(napi_create_uint32(env, RECORD_SIZE, &record_size));
  CHECK(napi_set_named_property(env, exports, "RECORD_SIZE", record_size));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
