/**
 * The powerbox end to end: `ferry daemon` and the CLI that talks to it,
 * with two real sshd "VMs" on loopback, each letting in its own unprivileged
 * user. Grants of a directory and of a file, edits both ways, a conflict and
 * its resolution, a read-only grant, two VMs that never see each other's
 * files, a daemon restart, revocation, and the control socket's owner check.
 */

import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { installedAgentName } from './support/agent.js';
import { FERRY_BIN, runFerry, tempDir, writeTree } from './support/cli.js';
import { Daemon } from './support/daemon.js';
import { type Sshd, startSshd, sshdUnavailable } from './support/sshd.js';
import { eventually, sleep, until } from './support/wait.js';

const skip = sshdUnavailable();
if (skip !== undefined) console.warn(`powerbox tests skipped: ${skip}`);

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

describe.skipIf(skip !== undefined)('the powerbox: ferry daemon, vm, grant, revoke', () => {
  let vm1: Sshd;
  let vm2: Sshd;
  let home: string;
  let daemon: Daemon | undefined;
  const ferry = (...args: string[]) => runFerry(home, args);
  const json = async (...args: string[]): Promise<unknown> => {
    const r = await ferry(...args, '--json');
    expect(r.status, `ferry ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return JSON.parse(r.stdout) as unknown;
  };
  // Writes in a guest as root, then hands the file to the guest user.
  const guestWrite = (vm: Sshd, path: string, content: string) => {
    writeFileSync(path, content);
    execFileSync('chown', [`${vm.user}:${vm.user}`, path]);
  };

  beforeAll(async () => {
    [vm1, vm2] = await Promise.all([startSshd('ferry-guest'), startSshd('ferry-guest2')]);
    home = tempDir('ferry-powerbox-');
  }, 60_000);
  afterAll(async () => {
    await daemon?.stop();
    await Promise.all([vm1.stop(), vm2.stop()]);
  });

  test('without a daemon, a command that needs one says how to start it', async () => {
    const r = await ferry('status');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/the ferry daemon is not running .*start it with `ferry daemon`/);
  });

  test('vm add pins the host key; without --key ferry makes one and prints the line to install', async () => {
    daemon = new Daemon(home);
    await daemon.ready();
    const socket = join(home, 'control.sock');
    expect(statSync(socket).mode & 0o777).toBe(0o600);

    const added = (await json('vm', 'add', 'vm1', '--ssh', `${vm1.user}@127.0.0.1:${vm1.port}`, '--key', vm1.clientKey)) as { hostKey: string };
    expect(added.hostKey).toMatch(/^ssh-ed25519 SHA256:/);
    const second = await ferry('vm', 'add', 'vm2', '--ssh', `${vm2.user}@127.0.0.1:${vm2.port}`);
    expect(second.status, second.stderr).toBe(0);
    const line = /^(ssh-ed25519 \S+ ferry-vm-vm2)$/m.exec(second.stdout)?.[1];
    expect(line, second.stdout).toBeDefined();
    writeFileSync(vm2.authorizedKeys, `${readFileSync(vm2.authorizedKeys, 'utf8')}${line ?? ''}\n`);
    const again = await ferry('vm', 'add', 'vm1', '--ssh', `${vm1.user}@127.0.0.1:${vm1.port}`);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/a VM named vm1 exists already/);
    // The daemon connects unattended: a key with a passphrase is refused at once.
    const locked = join(tempDir('ferry-lockedkey-'), 'k');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'a passphrase', '-f', locked]);
    const lockedVm = await ferry('vm', 'add', 'vm3', '--ssh', `${vm1.user}@127.0.0.1:${vm1.port}`, '--key', locked);
    expect(lockedVm.status).toBe(2);
    expect(lockedVm.stderr).toContain(`--key ${locked} is protected by a passphrase; a VM's key must have none`);
    const list = (await json('vm', 'list')) as { name: string }[];
    expect(list.map((v) => v.name)).toEqual(['vm1', 'vm2']);
  }, 60_000);

  let dirGrant = 0;
  let hostDir = '';
  let guestDir = '';
  let fileGrant = 0;
  let hostFile = '';
  let guestFile = '';

  test('a directory and a single file are granted; edits flow both ways; the file grant carries nothing beside it', async () => {
    const top = tempDir('ferry-grants-');
    hostDir = join(top, `project-${Date.now()}`);
    writeTree(hostDir, { 'readme.txt': 'hello', 'src/main.c': 'int main;' });
    const granted = (await json('grant', 'vm1', hostDir)) as { id: number; guestPath: string; kind: string };
    expect(granted.kind).toBe('dir');
    dirGrant = granted.id;
    guestDir = join(vm1.guestHome, 'Granted', basename(hostDir));
    expect(granted.guestPath).toBe(`Granted/${basename(hostDir)}`);
    // grant returns once the first sync is complete.
    expect(read(join(guestDir, 'src/main.c'))).toBe('int main;');

    const docs = join(top, 'docs');
    hostFile = join(docs, `letter-${Date.now()}.txt`);
    writeTree(docs, { [basename(hostFile)]: 'dear guest', 'secret.txt': 'not granted' });
    const file = (await json('grant', 'vm1', hostFile)) as { id: number; kind: string };
    expect(file.kind).toBe('file');
    fileGrant = file.id;
    guestFile = join(vm1.guestHome, 'Granted', basename(hostFile));
    expect(read(guestFile)).toBe('dear guest');
    expect(readdirSync(join(vm1.guestHome, 'Granted'))).not.toContain('secret.txt');

    writeFileSync(join(hostDir, 'readme.txt'), 'hello from the host');
    guestWrite(vm1, join(guestDir, 'from-guest.txt'), 'made in the VM');
    guestWrite(vm1, guestFile, 'dear host');
    await eventually(() => {
      expect(read(join(guestDir, 'readme.txt'))).toBe('hello from the host');
      expect(read(join(hostDir, 'from-guest.txt'))).toBe('made in the VM');
      expect(read(hostFile)).toBe('dear host');
    });
    expect(read(join(docs, 'secret.txt'))).toBe('not granted');
    expect(existsSync(join(vm1.guestHome, 'Granted', 'secret.txt'))).toBe(false);

    const overlap = await ferry('grant', 'vm1', join(hostDir, 'src'));
    expect(overlap.status).toBe(2);
    expect(overlap.stderr).toMatch(/overlaps grant/);
    // The kernel's pseudo files are not files to grant, read-write least of all.
    for (const path of ['/proc/sys/kernel', '/proc/self/status', '/sys/kernel']) {
      const pseudo = await ferry('grant', 'vm1', path);
      expect(pseudo.status, path).toBe(2);
      expect(pseudo.stderr).toMatch(/lies on (proc|sysfs), the kernel's view of the running system/);
    }
    // ferry's own state, or a directory holding it, is never granted: the guest could rewrite the daemon's grants.
    for (const [path, said] of [
      [home, `${home} holds ferry's own state (${home}: its database, the VMs' keys, known_hosts), which no guest may reach`],
      [join(home, '..'), `holds ferry's own state (${home}: `],
      [join(home, 'keys'), `${join(home, 'keys')} is part of ferry's own state (${home}), which no guest may reach`],
    ]) {
      const own = await ferry('grant', 'vm1', path ?? '', '--as', `Own/${basename(path ?? '')}`);
      expect(own.status, path).toBe(2);
      expect(own.stderr).toContain(said);
    }
    const tilde = await ferry('grant', 'vm1', docs, '--as', '~');
    expect(tilde.status).toBe(2);
    expect(tilde.stderr).toMatch(/--as "~": give a path for the guest copy/);
    // A place the guest user cannot write is said to be so, not "not empty".
    const fresh = join(tempDir('ferry-fresh-'), 'fresh');
    writeTree(fresh, { 'f.txt': 'f' });
    const unwritable = await ferry('grant', 'vm1', fresh, '--as', `/etc/ferry-test-${Date.now()}`);
    expect(unwritable.status).toBe(1);
    expect(unwritable.stderr).toMatch(/unable to create \/etc\/ferry-test-\d+ in VM vm1: .*Permission denied/);
    expect(existsSync(join(vm1.guestHome, '~'))).toBe(false);
  }, 90_000);

  test('a conflict halts only its file; `ferry resolve` releases it through the running daemon', async () => {
    writeFileSync(join(hostDir, 'shared.txt'), 'base');
    await eventually(() => expect(read(join(guestDir, 'shared.txt'))).toBe('base'));
    writeFileSync(join(hostDir, 'shared.txt'), 'host edit');
    guestWrite(vm1, join(guestDir, 'shared.txt'), 'guest edit');
    let conflicts: { id: number; path: string; grant: number | null; vm: string | null }[] = [];
    await eventually(() => {
      conflicts = JSON.parse(execFileSync(process.execPath, [FERRY_BIN, 'conflicts', '--json'], { env: { ...process.env, FERRY_HOME: home }, encoding: 'utf8' })) as typeof conflicts;
      expect(conflicts.map((c) => c.path)).toContain('shared.txt');
    });
    writeFileSync(join(hostDir, 'readme.txt'), 'still flowing');
    await eventually(() => expect(read(join(guestDir, 'readme.txt'))).toBe('still flowing'));
    expect(read(join(hostDir, 'shared.txt'))).toBe('host edit');
    expect(read(join(guestDir, 'shared.txt'))).toBe('guest edit');
    expect(conflicts.find((c) => c.path === 'shared.txt')).toMatchObject({ grant: dirGrant, vm: 'vm1' });
    const id = conflicts.find((c) => c.path === 'shared.txt')?.id;
    const shown = (await json('conflicts', 'show', String(id))) as { beta: { present: boolean; size: number }; diff: string };
    expect(shown.beta).toMatchObject({ present: true, size: 'guest edit'.length });
    expect(shown.diff).toMatch(/^-host edit$[\s\S]*^\+guest edit$/m);
    const resolved = await ferry('resolve', String(id), '--keep', 'guest');
    expect(resolved.status).toBe(0);
    expect(resolved.stdout).toContain(`keeping guest; the daemon applies it to grant ${dirGrant} (VM vm1) at once`);
    await eventually(() => expect(read(join(hostDir, 'shared.txt'))).toBe('guest edit'));
    expect(await json('conflicts')).toEqual([]);
  }, 60_000);

  let roGrant = 0;
  test('a link the guest makes stays in the guest and is logged once, naming its grant', async () => {
    const link = join(guestDir, `escape-${Date.now()}`);
    symlinkSync('/etc/passwd', link);
    execFileSync('chown', ['-h', `${vm1.user}:${vm1.user}`, link]);
    guestWrite(vm1, join(guestDir, 'beside-link.txt'), 'one');
    await eventually(() => expect(read(join(hostDir, 'beside-link.txt'))).toBe('one'));
    // Another pass over the same directory meets the link again.
    guestWrite(vm1, join(guestDir, 'beside-link.txt'), 'two');
    await eventually(() => expect(read(join(hostDir, 'beside-link.txt'))).toBe('two'));
    expect(existsSync(join(hostDir, basename(link)))).toBe(false);
    const logged = ((await json('log')) as { kind: string; path: string; grant: number | null; detail: string }[]).filter((e) => e.kind === 'unsupported');
    expect(logged).toEqual([expect.objectContaining({ path: basename(link), grant: dirGrant })]);
    expect(logged[0]?.detail).toBe(`grant ${dirGrant}: ${basename(link)} is a symbolic link on the guest; ferry does not sync it`);
    rmSync(link);
  }, 60_000);

  test("a guest that renames or deletes a granted file does not delete the host's: the grant halts, logs why, and resumes when the file is back", async () => {
    const before = read(hostFile);
    expect(before).toBeDefined();
    renameSync(guestFile, `${guestFile}.moved`);
    const halted = new RegExp(`the granted file ${basename(hostFile).replace('.', '\\.')} is gone from beta although the two sides were in sync before; refusing to delete it on alpha`);
    await until(async () => ((await json('status')) as { grants: { id: number; status: string }[] }).grants.some((g) => g.id === fileGrant && halted.test(g.status)), 'the file grant to halt');
    expect(read(hostFile)).toBe(before);
    const logged = ((await json('log')) as { kind: string; grant: number | null; detail: string }[]).filter((e) => e.kind === 'grant-halted' && e.grant === fileGrant);
    expect(logged.length).toBe(1);
    expect(logged[0]?.detail).toMatch(halted);
    renameSync(`${guestFile}.moved`, guestFile);
    guestWrite(vm1, guestFile, 'back in place');
    await eventually(() => expect(read(hostFile)).toBe('back in place'), 30_000);

    // A conflict on it cannot keep both: the copy beside it would be outside the grant.
    writeFileSync(hostFile, 'host side of it');
    guestWrite(vm1, guestFile, 'guest side of it');
    let id: number | undefined;
    await until(async () => {
      id = ((await json('conflicts')) as { id: number; grant: number | null }[]).find((c) => c.grant === fileGrant)?.id;
      return id !== undefined;
    }, 'a conflict on the granted file');
    expect((await ferry('resolve', String(id), '--keep', 'both')).status).toBe(0);
    await until(async () => ((await json('log')) as { kind: string; grant: number | null }[]).some((e) => e.kind === 'resolution-dropped' && e.grant === fileGrant), 'the choice to be dropped');
    expect(((await json('conflicts')) as { id: number }[]).map((c) => c.id)).toContain(id);
    expect(readdirSync(join(vm1.guestHome, 'Granted')).filter((name) => name.includes('(conflict'))).toEqual([]);
    expect((await ferry('resolve', String(id), '--keep', 'host')).status).toBe(0);
    await eventually(() => expect(read(guestFile)).toBe('host side of it'));
  }, 60_000);

  test('a read-only grant puts the guest copy back and logs the attempt; the other VM sees only its own grant', async () => {
    const hostRo = join(tempDir('ferry-ro-'), `reference-${Date.now()}`);
    writeTree(hostRo, { 'manual.txt': 'read me', 'sub/x.txt': 'x' });
    const granted = (await json('grant', 'vm2', hostRo, '--read-only')) as { id: number; readOnly: boolean };
    expect(granted.readOnly).toBe(true);
    roGrant = granted.id;
    const guestRo = join(vm2.guestHome, 'Granted', basename(hostRo));
    expect(read(join(guestRo, 'manual.txt'))).toBe('read me');

    guestWrite(vm2, join(guestRo, 'manual.txt'), 'vandalised');
    guestWrite(vm2, join(guestRo, 'planted.txt'), 'planted by the guest');
    // A directory the guest makes, with something in it, and one below a host directory.
    mkdirSync(join(guestRo, 'nest'));
    execFileSync('chown', [`${vm2.user}:${vm2.user}`, join(guestRo, 'nest')]);
    guestWrite(vm2, join(guestRo, 'nest', 'egg.txt'), 'laid by the guest');
    guestWrite(vm2, join(guestRo, 'sub', 'extra.txt'), 'beside a host file');
    // A link is not put back (ferry never touches links): it is logged as such, not as put back.
    symlinkSync('/etc/hostname', join(guestRo, 'pointer'));
    execFileSync('chown', ['-h', `${vm2.user}:${vm2.user}`, join(guestRo, 'pointer')]);
    await eventually(() => {
      expect(read(join(guestRo, 'manual.txt'))).toBe('read me');
      expect(existsSync(join(guestRo, 'planted.txt'))).toBe(false);
      expect(existsSync(join(guestRo, 'nest'))).toBe(false);
      expect(existsSync(join(guestRo, 'sub', 'extra.txt'))).toBe(false);
    });
    expect(readdirSync(hostRo).sort()).toEqual(['manual.txt', 'sub']);
    expect(readdirSync(join(hostRo, 'sub'))).toEqual(['x.txt']);
    expect(read(join(hostRo, 'manual.txt'))).toBe('read me');
    expect(existsSync(join(hostRo, 'planted.txt'))).toBe(false);
    const log = (await json('log')) as { kind: string; path: string; grant: number | null }[];
    expect(log.filter((e) => e.kind === 'read-only').map((e) => e.path)).toEqual(expect.arrayContaining(['manual.txt', 'planted.txt']));
    // Each entry names the grant it concerns.
    expect(new Set(log.filter((e) => e.kind === 'read-only').map((e) => e.grant))).toEqual(new Set([roGrant]));
    expect(log.filter((e) => e.path === 'pointer').map((e) => e.kind)).toEqual(['unsupported']);
    rmSync(join(guestRo, 'pointer'));
    expect((await ferry('log')).stdout).toMatch(new RegExp(`\tread-only\tmanual\\.txt\tgrant ${roGrant}: the guest changed manual\\.txt`));

    // vm2's user sees its grant and nothing of vm1's; vm1's sees none of vm2's.
    expect(readdirSync(join(vm2.guestHome, 'Granted'))).toEqual([basename(hostRo)]);
    expect(readdirSync(join(vm1.guestHome, 'Granted'))).not.toContain(basename(hostRo));
    const grants = (await json('grants', '--vm', 'vm2')) as { id: number }[];
    expect(grants.map((g) => g.id)).toEqual([roGrant]);
    const nosuch = await ferry('grants', '--vm', 'nosuch');
    expect(nosuch.status).toBe(2);
    expect(nosuch.stderr).toContain('--vm nosuch: no VM of that name');
    // `ferry status` says which grants are read-only.
    const status = await ferry('status');
    expect(status.stdout, status.stdout).toContain(`grant ${roGrant} vm2: ${hostRo} → Granted/${basename(hostRo)} (read-only): `);
  }, 60_000);

  test('limits: a file too large or one entry too many from the guest is refused and logged; a chatty agent is cut off', async () => {
    const hostLim = join(tempDir('ferry-limits-'), `limited-${Date.now()}`);
    writeTree(hostLim, { 'a.txt': 'a', 'b.txt': 'b' });
    const granted = (await json('grant', 'vm1', hostLim, '--max-file-size', '1K', '--max-entries', '4')) as { id: number; limits: { maxFileBytes: number; maxEntries: number } };
    expect(granted.limits).toMatchObject({ maxFileBytes: 1024, maxEntries: 4 });
    const guestLim = join(vm1.guestHome, 'Granted', basename(hostLim));
    guestWrite(vm1, join(guestLim, 'big.bin'), 'x'.repeat(2048));
    guestWrite(vm1, join(guestLim, 'c.txt'), 'c');
    guestWrite(vm1, join(guestLim, 'd.txt'), 'd');
    guestWrite(vm1, join(guestLim, 'e.txt'), 'e');
    await eventually(() => {
      expect(read(join(hostLim, 'c.txt'))).toBe('c');
      expect(read(join(hostLim, 'd.txt'))).toBe('d');
    });
    await sleep(500);
    expect(existsSync(join(hostLim, 'big.bin'))).toBe(false);
    expect(existsSync(join(hostLim, 'e.txt'))).toBe(false);
    const log = (await json('log')) as { kind: string; path: string; detail: string }[];
    expect(log.filter((e) => e.kind === 'limit').map((e) => e.path)).toEqual(expect.arrayContaining(['big.bin', 'e.txt']));
    expect(log.find((e) => e.kind === 'limit' && e.path === 'big.bin')?.detail).toMatch(/2048 bytes, more than the grant's largest file \(1024 bytes\)/);
    // Later passes meet big.bin again: it is logged once, as a limit (not a sync error too).
    for (const n of [1, 2]) {
      guestWrite(vm1, join(guestLim, 'c.txt'), `c${n}`);
      await eventually(() => expect(read(join(hostLim, 'c.txt'))).toBe(`c${n}`));
    }
    const later = (await json('log')) as { kind: string; path: string }[];
    expect(later.filter((e) => e.path === 'big.bin').map((e) => e.kind)).toEqual(['limit']);
    // An entry that names its grant is not prefixed with it again.
    expect((await ferry('log')).stdout).not.toMatch(/grant (\d+): grant \1[: ]/);
    expect((await ferry('revoke', String(granted.id))).status).toBe(0);

    const hostChatty = join(tempDir('ferry-limits-'), `chatty-${Date.now()}`);
    writeTree(hostChatty, Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`f${i}.txt`, `${i}`])));
    const chatty = await ferry('grant', 'vm1', hostChatty, '--max-message-rate', '5');
    expect(chatty.status).toBe(1);
    expect(chatty.stderr).toMatch(/limit hit: more than 5 messages in one second/);
    const after = (await json('log')) as { kind: string; detail: string }[];
    expect(after.some((e) => e.kind === 'limit' && /more than 5 messages/.test(e.detail))).toBe(true);
    const bad = await ferry('grant', 'vm1', hostChatty, '--max-file-size', 'huge');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--max-file-size "huge": give a size such as 500M or 2G/);
  }, 60_000);

  test("an agent that crashes, or one that breaks the protocol, drops only its own VM's link", async () => {
    const cache = join(vm2.guestHome, '.cache', 'ferry');
    // The agent of this build: older builds' agents may lie beside it.
    const agentPath = join(cache, installedAgentName());
    expect(existsSync(agentPath)).toBe(true);
    const honest = readFileSync(agentPath);
    const guestRo = join(vm2.guestHome, 'Granted', readdirSync(join(vm2.guestHome, 'Granted'))[0] ?? '');
    const hostRo = (((await json('grants', '--vm', 'vm2')) as { hostPath: string }[])[0] ?? { hostPath: '' }).hostPath;
    // The compromised guest answers with something that is not ferry's protocol.
    writeFileSync(agentPath, "process.stdout.write('NOTFERRY' + 'x'.repeat(64)); setInterval(() => {}, 1000);\n");
    try {
      vm2.killAgents();
      await until(async () => {
        const log = (await json('log')) as { kind: string; detail: string }[];
        return log.some((e) => e.kind === 'protocol-violation' && /VM vm2/.test(e.detail));
      }, 'a protocol violation of vm2 in the log');
      // vm1 is served all along.
      guestWrite(vm1, guestFile, 'vm1 keeps flowing');
      await eventually(() => expect(read(hostFile)).toBe('vm1 keeps flowing'));
    } finally {
      writeFileSync(agentPath, honest);
    }
    // With its honest agent back (and after an agent crash), vm2's grant recovers by itself.
    vm2.killAgents();
    writeFileSync(join(hostRo, 'manual.txt'), 'second edition');
    await eventually(() => expect(read(join(guestRo, 'manual.txt'))).toBe('second edition'), 60_000);
  }, 120_000);

  test('after a restart of the daemon every grant resumes and every conflict is kept', async () => {
    writeFileSync(join(hostDir, 'kept.txt'), 'base');
    await eventually(() => expect(read(join(guestDir, 'kept.txt'))).toBe('base'));
    writeFileSync(join(hostDir, 'kept.txt'), 'host side');
    guestWrite(vm1, join(guestDir, 'kept.txt'), 'guest side');
    let conflictId = 0;
    await until(async () => {
      const open = (await json('conflicts')) as { id: number; path: string }[];
      conflictId = open.find((c) => c.path === 'kept.txt')?.id ?? 0;
      return conflictId > 0;
    }, 'a conflict on kept.txt');
    expect(await daemon?.stop()).toBe(0);
    const temps = (dir: string) => readdirSync(dir, { recursive: true }).map(String).filter((name) => basename(name).startsWith('.ferry-tmp-'));
    expect(temps(hostDir)).toEqual([]);
    expect(temps(guestDir)).toEqual([]);
    writeFileSync(join(hostDir, 'while-down.txt'), 'written while the daemon was stopped');
    daemon = new Daemon(home);
    await daemon.ready();
    await eventually(() => expect(read(join(guestDir, 'while-down.txt'))).toBe('written while the daemon was stopped'), 30_000);
    guestWrite(vm1, guestFile, 'after the restart');
    await eventually(() => expect(read(hostFile)).toBe('after the restart'));
    const status = (await json('status')) as { daemon: { since: unknown }; grants: { id: number; status: string; lastSyncAt: unknown }[] };
    expect(status.grants.map((g) => g.id).sort()).toEqual([dirGrant, fileGrant, roGrant].sort());
    // Times as ISO 8601, as in `grants --json` and `log --json`.
    const iso = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
    expect(status.daemon.since).toMatch(iso);
    expect(status.grants.find((g) => g.id === fileGrant)?.lastSyncAt).toMatch(iso);
    const open = (await json('conflicts')) as { id: number; path: string }[];
    expect(open.find((c) => c.id === conflictId)?.path).toBe('kept.txt');
    expect((await ferry('resolve', String(conflictId), '--keep', 'host')).status).toBe(0);
    await eventually(() => expect(read(join(guestDir, 'kept.txt'))).toBe('host side'));
  }, 90_000);

  test('after revoke returns nothing from the guest reaches the host, and the guest copy is gone', async () => {
    const r = (await json('revoke', String(dirGrant))) as { guestCopy: string };
    expect(r.guestCopy).toBe('removed');
    expect(existsSync(guestDir)).toBe(false);
    const before = readdirSync(hostDir).sort();
    mkdirSync(guestDir, { recursive: true });
    guestWrite(vm1, join(guestDir, 'after-revoke.txt'), 'must never reach the host');
    guestWrite(vm1, join(guestDir, 'readme.txt'), 'must never reach the host either');
    await sleep(2000);
    expect(readdirSync(hostDir).sort()).toEqual(before);
    expect(read(join(hostDir, 'readme.txt'))).toBe('still flowing');
    const grants = (await json('grants', '--all')) as { id: number; state: string }[];
    expect(grants.find((g) => g.id === dirGrant)?.state).toBe('revoked');
    const log = (await json('log')) as { kind: string; detail: string }[];
    expect(log.some((e) => e.kind === 'revoke' && e.detail.startsWith(`grant ${dirGrant} revoked`))).toBe(true);
    // The other grants keep flowing.
    guestWrite(vm1, guestFile, 'the file grant still works');
    await eventually(() => expect(read(hostFile)).toBe('the file grant still works'));
    // A file grant holds one file: the guest making it a directory changes nothing on the host, and the log says why.
    rmSync(guestFile);
    mkdirSync(guestFile);
    guestWrite(vm1, join(guestFile, 'inside.txt'), 'not a file any more');
    const said = `grant ${fileGrant}: ${basename(hostFile)} is a directory on beta, where a single file is granted; nothing is synced for it until it is a file again`;
    await until(async () => ((await json('log')) as { kind: string; detail: string }[]).some((e) => e.kind === 'sync-error' && e.detail === said), 'the file grant to log the directory');
    expect(statSync(hostFile).isFile()).toBe(true);
    expect(read(hostFile)).toBe('the file grant still works');
    rmSync(guestFile, { recursive: true });
    guestWrite(vm1, guestFile, 'a file again');
    await eventually(() => expect(read(hostFile)).toBe('a file again'));
    const again = await ferry('revoke', String(dirGrant));
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/no active grant/);
  }, 60_000);

  test('a VM that vanishes stops nothing else; a grant revoked meanwhile is dead at once and its copy goes on reconnect', async () => {
    await vm2.vanish();
    guestWrite(vm1, guestFile, 'vm1 does not care');
    await eventually(() => expect(read(hostFile)).toBe('vm1 does not care'));
    const r = (await json('revoke', String(roGrant))) as { guestCopy: string };
    expect(r.guestCopy).toMatch(/^removal pending: VM vm2 is unreachable \(.+\); the copy is removed when the VM is next reachable$/);
    const guestRo = readdirSync(join(vm2.guestHome, 'Granted'));
    expect(guestRo).toHaveLength(1);
    expect(((await json('grants', '--all')) as { id: number; state: string }[]).find((g) => g.id === roGrant)?.state).toBe('cleanup');
    await vm2.restart();
    await eventually(() => expect(readdirSync(join(vm2.guestHome, 'Granted'))).toEqual([]), 30_000);
    expect(((await json('grants', '--all')) as { id: number; state: string }[]).find((g) => g.id === roGrant)?.state).toBe('revoked');
  }, 90_000);

  test('revoke says what became of the guest copy: left when the guest made a directory of a granted file, pending (and why) when it cannot be removed', async () => {
    const top = tempDir('ferry-revokes-');
    const hostOne = join(top, `one-${Date.now()}.txt`);
    writeFileSync(hostOne, 'one');
    const one = (await json('grant', 'vm1', hostOne)) as { id: number };
    const guestOne = join(vm1.guestHome, 'Granted', basename(hostOne));
    rmSync(guestOne);
    mkdirSync(guestOne);
    execFileSync('chown', [`${vm1.user}:${vm1.user}`, guestOne]);
    const left = (await json('revoke', String(one.id))) as { guestCopy: string };
    expect(left.guestCopy).toBe(`left in place: Granted/${basename(hostOne)} is a directory the guest made in place of the granted file`);
    expect(statSync(guestOne).isDirectory()).toBe(true);
    expect(read(hostOne)).toBe('one');
    rmSync(guestOne, { recursive: true });

    // Something in the guest copy the guest user may not remove (root's).
    const hostTwo = join(top, 'two');
    writeTree(hostTwo, { 'a.txt': 'a' });
    const two = (await json('grant', 'vm1', hostTwo, '--as', 'Granted/two')) as { id: number };
    const guestTwo = join(vm1.guestHome, 'Granted', 'two');
    writeTree(join(guestTwo, 'roots'), { 'r.txt': 'root made this' });
    const pending = (await json('revoke', String(two.id))) as { guestCopy: string };
    expect(pending.guestCopy).toMatch(new RegExp(`^removal pending: Granted/two could not be removed in VM vm1 \\(rm: .*Permission denied\\); ferry retries every 10 s \\(\`ferry revoke ${two.id} --keep-guest-copy\` gives up on it\\)$`));
    // Its guest path is still taken; its host path is free.
    const taken = await ferry('grant', 'vm1', join(top, 'two'), '--as', 'Granted/two');
    expect(taken.status).toBe(2);
    expect(taken.stderr).toContain(`guest path Granted/two overlaps Granted/two in VM vm1, the copy of revoked grant ${two.id} that ferry has not removed yet`);
    const kept = (await json('revoke', String(two.id), '--keep-guest-copy')) as { guestCopy: string };
    expect(kept.guestCopy).toBe('kept');
    expect(((await json('grants', '--all')) as { id: number; state: string }[]).find((g) => g.id === two.id)?.state).toBe('revoked');
    expect(read(join(guestTwo, 'roots', 'r.txt'))).toBe('root made this');
    rmSync(guestTwo, { recursive: true });
  }, 60_000);

  test('vm rm revokes the VM grants first', async () => {
    const hostMore = join(tempDir('ferry-more-'), `more-${Date.now()}`);
    writeTree(hostMore, { 'm.txt': 'm' });
    const more = (await json('grant', 'vm2', hostMore)) as { id: number };
    // The guest removes its copy; when the grant next connects, it says so and the host keeps everything.
    rmSync(join(vm2.guestHome, 'Granted', basename(hostMore)), { recursive: true });
    await vm2.vanish();
    await vm2.restart();
    await until(
      async () => ((await json('status')) as { grants: { id: number; status: string }[] }).grants.some((g) => g.id === more.id && /the beta root \S+ is gone.*nothing was changed on either side/.test(g.status)),
      'the grant to say its guest copy is gone',
    );
    expect(read(join(hostMore, 'm.txt'))).toBe('m');
    const result = (await json('vm', 'rm', 'vm2')) as { revoked: { id: number; guestCopy: string }[] };
    expect(result.revoked).toEqual([{ id: more.id, guestCopy: 'removed' }]);
    expect(readdirSync(join(vm2.guestHome, 'Granted'))).toEqual([]);
    expect(((await json('vm', 'list')) as { name: string }[]).map((v) => v.name)).toEqual(['vm1']);
  }, 60_000);

  test('only the owner may use the control socket', async () => {
    const socket = join(home, 'control.sock');
    const script = `require('net').connect(${JSON.stringify(socket)}).on('data', (d) => { process.stdout.write(d); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); }).write('{"id":1,"method":"status"}\\n')`;
    const asGuest = () => execFileSync('runuser', ['-u', vm1.user, '--', process.execPath, '-e', script], { encoding: 'utf8' });
    // The directory (0700) and the socket (0600) keep others out…
    expect(asGuest()).toMatch(/EACCES/);
    // …and were they opened up, the daemon checks who is calling.
    chmodSync(home, 0o755);
    chmodSync(socket, 0o666);
    try {
      expect(asGuest()).toMatch(/"code":"EPERM".*may not use it/);
    } finally {
      chmodSync(home, 0o700);
      chmodSync(socket, 0o600);
    }
    const log = (await json('log')) as { kind: string }[];
    expect(log.some((e) => e.kind === 'control-refused')).toBe(true);
  }, 30_000);

  test('cleanup', () => {
    rmSync(join(vm1.guestHome, 'Granted'), { recursive: true, force: true });
  });
});
