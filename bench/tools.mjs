// The tools bench/run.mjs compares, and the exact command each is run with.
// Plain Node ESM, node:* only.

import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { firstLine, freshDir, have, rmrf } from './lib.mjs';
import { GUEST_USER, chownToGuest } from './sshd.mjs';

/**
 * peerPresence returns have(cmd), except that the names in
 * BENCH_PRETEND_MISSING (comma-separated) count as not installed: the smoke
 * test uses it to check that a missing peer is reported, not dropped.
 */
export function peerPresence() {
  const pretend = new Set((process.env.BENCH_PRETEND_MISSING ?? '').split(',').filter(Boolean));
  return (cmd) => !pretend.has(cmd) && have(cmd);
}

/** missing is the table text for a peer that is not installed. */
const missing = (cmd, pkg = cmd) => `missing (${cmd}: apt-get install ${pkg})`;

/**
 * syncTools returns the one-shot synchronisers in table order. Each has
 * key, label, over ('local' | 'ssh'), initialOnly, unavailable (why it cannot
 * run, or undefined), version, target(name) → { dst, home } making a fresh
 * empty destination and state directory, and command(src, target) →
 * [cmd, args, env]. The initial sync and every resync run the same command.
 *
 * ctx: { work, ferryBin, ferryVersion, present, sshd (or undefined), sshUnavailable, guestHas }
 */
export function syncTools(ctx) {
  const { work, ferryBin, present, sshd } = ctx;
  // over ssh, cmd must be installed here and runnable in the guest (for ferry: node, for its agent)
  const overSsh = (cmd) => {
    if (ctx.sshUnavailable) return ctx.sshUnavailable;
    if (!present(cmd)) return missing(cmd);
    if (!ctx.guestHas.has(cmd)) return `missing (${cmd} is not in ${GUEST_USER}'s PATH over ssh)`;
    return undefined;
  };
  const localDir = (name) => freshDir(path.join(work, name));
  const guestDir = (name) => {
    const dst = freshDir(path.join(work, 'guest', name));
    chownToGuest(dst);
    return dst;
  };
  const unisonHome = (name) => {
    const home = localDir(name);
    mkdirSync(path.join(home, '.unison'));
    return home;
  };
  const unisonEnv = (home) => ({ HOME: home, UNISON: path.join(home, '.unison') });
  const unisonArgs = ['-batch', '-perms', '0', '-ui', 'text'];
  // the same OpenSSH client options and cipher for rsync and unison; ssh2 in ferry negotiates aes128-gcm@openssh.com too
  const sshArgs = sshd ? [...sshd.sshOptions, '-c', 'aes128-gcm@openssh.com'] : [];
  const guestUrl = (dst) => `${GUEST_USER}@127.0.0.1:${dst}`;
  const ferryHome = (name, knownHosts) => {
    const home = localDir(name);
    if (knownHosts) writeFileSync(path.join(home, 'known_hosts'), `${sshd.knownHostsLine}\n`);
    return home;
  };
  const version = (cmd, args) => (present(cmd) ? (firstLine(cmd, args) ?? 'unknown') : 'missing');

  return [
    {
      key: 'ferry',
      label: 'ferry',
      over: 'local',
      version: ctx.ferryVersion,
      target: (name) => ({ dst: localDir(`${name}-dst`), home: ferryHome(`${name}-home`, false) }),
      // run as users run it: the executable (bin/ferry.js)
      command: (src, t) => [ferryBin, ['sync', src, t.dst, '--once'], { FERRY_HOME: t.home }],
    },
    {
      key: 'rsync',
      label: 'rsync -a',
      over: 'local',
      unavailable: present('rsync') ? undefined : missing('rsync'),
      version: version('rsync', ['--version']),
      target: (name) => ({ dst: localDir(`${name}-dst`) }),
      command: (src, t) => ['rsync', ['-a', `${src}/`, `${t.dst}/`], {}],
    },
    {
      key: 'unison',
      label: 'unison',
      over: 'local',
      unavailable: present('unison') ? undefined : missing('unison'),
      version: version('unison', ['-version']),
      target: (name) => ({ dst: localDir(`${name}-dst`), home: unisonHome(`${name}-home`) }),
      command: (src, t) => ['unison', [src, t.dst, ...unisonArgs], unisonEnv(t.home)],
    },
    {
      key: 'cp',
      label: 'cp -a',
      over: 'local',
      initialOnly: true,
      unavailable: present('cp') ? undefined : missing('cp', 'coreutils'),
      version: version('cp', ['--version']),
      // cp -a SRC DST copies SRC itself when DST does not exist yet
      target: (name) => {
        const dst = path.join(work, `${name}-dst`);
        rmrf(dst);
        return { dst };
      },
      command: (src, t) => ['cp', ['-a', src, t.dst], {}],
    },
    {
      key: 'ferry-ssh',
      label: 'ferry (ssh)',
      over: 'ssh',
      unavailable: overSsh('node'),
      version: ctx.ferryVersion,
      target: (name) => ({ dst: guestDir(`${name}-dst`), home: ferryHome(`${name}-home`, true) }),
      command: (src, t) => [ferryBin, ['sync', src, `ssh://${GUEST_USER}@127.0.0.1:${sshd.port}${t.dst}`, '--once', '--key', sshd.clientKey], { FERRY_HOME: t.home }],
    },
    {
      key: 'rsync-ssh',
      label: 'rsync -a (ssh)',
      over: 'ssh',
      unavailable: overSsh('rsync'),
      version: version('rsync', ['--version']),
      target: (name) => ({ dst: guestDir(`${name}-dst`) }),
      command: (src, t) => ['rsync', ['-a', '-e', ['ssh', '-p', String(sshd.port), ...sshArgs].join(' '), `${src}/`, `${guestUrl(t.dst)}/`], {}],
    },
    {
      key: 'unison-ssh',
      label: 'unison (ssh)',
      over: 'ssh',
      unavailable: overSsh('unison'),
      version: version('unison', ['-version']),
      // every target is a new guest path, so the guest-side archive is new too
      target: (name) => ({ dst: guestDir(`${name}-dst`), home: unisonHome(`${name}-home`) }),
      command: (src, t) => [
        'unison',
        [src, `ssh://${GUEST_USER}@127.0.0.1:${sshd.port}/${t.dst}`, ...unisonArgs, '-sshargs', sshArgs.join(' ')],
        unisonEnv(t.home),
      ],
    },
  ];
}

/**
 * probeFerryWatch says whether `ferry sync A B --watch` exists: it runs it on
 * two small directories and returns undefined if it is still running after
 * 3 s (then stops it), or the reason it is not available.
 */
export async function probeFerryWatch(ferryBin, dir) {
  const alpha = freshDir(path.join(dir, 'alpha'));
  const beta = freshDir(path.join(dir, 'beta'));
  writeFileSync(path.join(alpha, 'probe.txt'), 'probe\n');
  const child = spawn(ferryBin, ['sync', alpha, beta, '--watch'], { env: { ...process.env, FERRY_HOME: freshDir(path.join(dir, 'home')) }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  // without --watch ferry exits at once with a usage error; a watcher is still running after 3 s
  const outcome = await Promise.race([exited, sleep(3000).then(() => undefined)]);
  if (outcome === undefined) {
    child.kill('SIGTERM');
    await exited;
    return undefined;
  }
  const message = stderr.trim().split('\n')[0] ?? '';
  // ferry answers a usage error (exit 2) when it does not know --watch yet
  if (outcome.code === 2 && /watch/.test(message)) return 'not available: ferry sync --watch not implemented yet';
  return `not available: ferry sync --watch exited ${outcome.code ?? outcome.signal} at once${message ? ` (${message})` : ''}`;
}

/**
 * watchTools returns the continuous synchronisers, in table order, each with
 * key, label, unavailable, version and command(alpha, beta, dir) →
 * [cmd, args, env], dir being a fresh directory for its state and config.
 *
 * ctx: { ferryBin, ferryVersion, ferryWatchUnavailable, present }
 */
export function watchTools(ctx) {
  const { present } = ctx;
  const lsyncdMissing = !present('lsyncd') ? missing('lsyncd') : !present('rsync') ? `missing (rsync, which lsyncd runs: apt-get install rsync)` : undefined;
  return [
    {
      key: 'ferry-watch',
      label: 'ferry sync --watch',
      unavailable: ctx.ferryWatchUnavailable,
      version: ctx.ferryVersion,
      command: (alpha, beta, dir) => [ctx.ferryBin, ['sync', alpha, beta, '--watch'], { FERRY_HOME: freshDir(path.join(dir, 'home')) }],
    },
    {
      key: 'lsyncd',
      label: 'lsyncd',
      unavailable: lsyncdMissing,
      version: present('lsyncd') ? (firstLine('lsyncd', ['--version']) ?? 'unknown') : 'missing',
      // One-way: on each inotify event lsyncd runs rsync -a for the changed paths at once (delay 0).
      command: (alpha, beta, dir) => lsyncdCommand(dir, alpha, `${beta}/`),
    },
    {
      key: 'unison-watch',
      label: 'unison -repeat 1',
      unavailable: present('unison') ? undefined : missing('unison'),
      version: present('unison') ? (firstLine('unison', ['-version']) ?? 'unknown') : 'missing',
      command: (alpha, beta, dir) => {
        const home = freshDir(path.join(dir, 'home'));
        mkdirSync(path.join(home, '.unison'));
        return ['unison', [alpha, beta, '-batch', '-perms', '0', '-ui', 'text', '-repeat', '1'], { HOME: home, UNISON: path.join(home, '.unison') }];
      },
    },
  ];
}

/**
 * watchSshTools returns the continuous synchronisers of the watch-ssh part,
 * alpha here and beta in the guest over the bench's loopback sshd, each with
 * key, label, unavailable, version, guestSide (what runs in the guest) and
 * command(alpha, beta, dir) → [cmd, args, env]; beta is an absolute guest
 * path owned by ferry-guest, dir a fresh directory for state and config.
 *
 * ctx: { ferryBin, ferryVersion, ferryWatchUnavailable, present, sshd (or undefined), sshUnavailable, guestHas }
 */
export function watchSshTools(ctx) {
  const { present, sshd } = ctx;
  const overSsh = (cmd, pkg = cmd) => {
    if (ctx.sshUnavailable) return ctx.sshUnavailable;
    if (!present(cmd)) return missing(cmd, pkg);
    if (cmd !== 'lsyncd' && !ctx.guestHas.has(cmd)) return `missing (${cmd} is not in ${GUEST_USER}'s PATH over ssh)`;
    return undefined;
  };
  // the OpenSSH options and cipher of the ssh sync rows (ferry's ssh2 negotiates aes128-gcm@openssh.com too)
  const sshArgs = sshd ? [...sshd.sshOptions, '-c', 'aes128-gcm@openssh.com'] : [];
  const lsyncdMissing = overSsh('lsyncd') ?? (!present('rsync') || !ctx.guestHas.has('rsync') ? `missing (rsync, which lsyncd runs here and in the guest: apt-get install rsync)` : undefined);
  return [
    {
      key: 'ferry-watch-ssh',
      label: 'ferry sync --watch (ssh)',
      unavailable: ctx.sshUnavailable ?? ctx.ferryWatchUnavailable ?? overSsh('node', 'nodejs'),
      version: ctx.ferryVersion,
      guestSide: "sshd's session and ferry's agent (node)",
      command: (alpha, beta, dir) => {
        const home = freshDir(path.join(dir, 'home'));
        writeFileSync(path.join(home, 'known_hosts'), `${sshd.knownHostsLine}\n`);
        return [ctx.ferryBin, ['sync', alpha, `ssh://${GUEST_USER}@127.0.0.1:${sshd.port}${beta}`, '--watch', '--json', '--key', sshd.clientKey], { FERRY_HOME: home }];
      },
    },
    {
      key: 'lsyncd-ssh',
      label: 'lsyncd (rsync over ssh)',
      unavailable: lsyncdMissing,
      version: present('lsyncd') ? (firstLine('lsyncd', ['--version']) ?? 'unknown') : 'missing',
      guestSide: "sshd's session and an rsync server, per rsync lsyncd runs",
      // One-way: on each batch of inotify events lsyncd runs rsync -a for the changed paths at once (delay 0),
      // over a new ssh connection each time; at start one full rsync (with --delete).
      command: (alpha, beta, dir) => lsyncdCommand(dir, alpha, `${GUEST_USER}@127.0.0.1:${beta}/`, ['ssh', '-p', String(sshd.port), ...sshArgs].join(' ')),
    },
    {
      key: 'unison-watch-ssh',
      label: 'unison -repeat 1 (ssh)',
      unavailable: overSsh('unison'),
      version: present('unison') ? (firstLine('unison', ['-version']) ?? 'unknown') : 'missing',
      guestSide: "sshd's session and unison -server",
      command: (alpha, beta, dir) => {
        const home = freshDir(path.join(dir, 'home'));
        mkdirSync(path.join(home, '.unison'));
        return [
          'unison',
          [alpha, `ssh://${GUEST_USER}@127.0.0.1:${sshd.port}/${beta}`, '-batch', '-perms', '0', '-ui', 'text', '-repeat', '1', '-sshargs', sshArgs.join(' ')],
          { HOME: home, UNISON: path.join(home, '.unison') },
        ];
      },
    },
  ];
}

/**
 * lsyncdCommand writes an lsyncd config in dir that mirrors alpha to target
 * with rsync -a on every change (delay 0), over `rsh` when given, and returns
 * the command that runs it in the foreground.
 */
function lsyncdCommand(dir, alpha, target, rsh) {
  const lua = JSON.stringify; // a JSON string literal is a valid Lua string literal for these paths
  const config = path.join(dir, 'lsyncd.lua');
  const rsync = rsh === undefined ? '{ archive = true }' : `{ archive = true, rsh = ${lua(rsh)} }`;
  writeFileSync(
    config,
    [
      `settings { nodaemon = true, insist = false, logfile = ${lua(path.join(dir, 'lsyncd.log'))}, statusFile = ${lua(path.join(dir, 'lsyncd.status'))} }`,
      `sync { default.rsync, source = ${lua(`${alpha}/`)}, target = ${lua(target)}, delay = 0, rsync = ${rsync} }`,
      '',
    ].join('\n'),
  );
  return ['lsyncd', [config], {}];
}
