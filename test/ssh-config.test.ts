/**
 * Reading ~/.ssh/config as ssh does, for the part ferry uses: where a host
 * name leads, as whom, on which port, with which keys.
 */

import { homedir } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseSshTarget } from '../src/powerbox/powerbox.js';
import { hostMatches, sshConfigFor } from '../src/transport/ssh-config.js';
import { parseTarget, targetLabel } from '../src/transport/target.js';
import { tempDir } from './support/cli.js';

function config(text: string, extra: Record<string, string> = {}): string {
  const dir = tempDir('ferry-sshconfig-');
  for (const [name, body] of Object.entries(extra)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), body.replaceAll('$DIR', dir));
  }
  writeFileSync(join(dir, 'config'), text.replaceAll('$DIR', dir));
  return join(dir, 'config');
}

describe('ssh config', () => {
  test.for([
    ['vm', ['vm'], true],
    ['vm', ['VM'], false],
    ['vm1', ['vm?'], true],
    ['vm12', ['vm?'], false],
    ['build.lan', ['*.lan'], true],
    ['lan', ['*.lan'], false],
    ['a.b', ['a.b'], true],
    ['axb', ['a.b'], false],
    ['db.lan', ['*.lan', '!db.lan'], false],
    ['web.lan', ['*.lan', '!db.lan'], true],
    ['db.lan', ['!db.lan'], false],
    ['other', ['!db.lan'], false],
  ] as const)('Host %j matches %j: %j', ([host, patterns, expected]) => {
    expect(hostMatches(host, patterns)).toBe(expected);
  });

  test('the first value of each keyword wins; IdentityFile adds up; Host * comes last as a default', () => {
    const file = config(`
# a comment
Host vm vm2
  HostName 192.0.2.10   # trailing comment
  User alice
  IdentityFile ~/.ssh/vm_key
Host vm
  User bob
  Port 2222
  IdentityFile "$DIR/with space"
Host *
  User fallback
  Port 22
`);
    expect(sshConfigFor('vm', undefined, file)).toEqual({ hostName: '192.0.2.10', user: 'alice', port: 2222, identityFiles: [join(homedir(), '.ssh/vm_key'), join(file, '..', 'with space')] });
    expect(sshConfigFor('vm2', undefined, file)).toEqual({ hostName: '192.0.2.10', user: 'alice', port: 22, identityFiles: [join(homedir(), '.ssh/vm_key')] });
    expect(sshConfigFor('elsewhere', undefined, file)).toEqual({ user: 'fallback', port: 22, identityFiles: [] });
  });

  test('Keyword=value in its forms, quotes inside a word, tokens in HostName and IdentityFile, repeated keys once', () => {
    const file = config(`
Host *.vm
  HostName=%h.example.net
  User =carol
  Port= 2222
  IdentityFile %d/keys/%r@%h
  IdentityFile="$DIR/a key"
  IdentityFile %d/keys/%r@%h
`);
    expect(sshConfigFor('a.vm', undefined, file)).toEqual({
      hostName: 'a.vm.example.net',
      user: 'carol',
      port: 2222,
      identityFiles: [join(homedir(), 'keys/carol@a.vm.example.net'), join(file, '..', 'a key')],
    });
    // %r is the user the command line names, when it names one.
    expect(sshConfigFor('a.vm', 'dave', file).identityFiles[0]).toBe(join(homedir(), 'keys/dave@a.vm.example.net'));
  });

  test('Include is followed in place, with wildcards; a Match block is skipped unless it is Match all', () => {
    const file = config(
      `
Include $DIR/conf.d/*.conf
Match host vm exec "true"
  User matched
Match all
  Port 2200
Host vm
  User late
`,
      { 'conf.d/10-vm.conf': 'Host vm\n  HostName 10.0.0.5\n', 'conf.d/20-more.conf': 'Host vm\n  HostName 10.0.0.6\n  User early\n', 'conf.d/ignored.txt': 'Host vm\n  User no\n' },
    );
    expect(sshConfigFor('vm', undefined, file)).toEqual({ hostName: '10.0.0.5', user: 'early', port: 2200, identityFiles: [] });
  });

  test('Host and Match lines hold only to the end of their file; a file included where nothing applies applies nowhere', () => {
    const file = config(
      `
Include $DIR/dot/*
Host myvm
  Include $DIR/other.conf
  User alice
Host elsewhere
  Include $DIR/all.conf
Host *
  Port 2201
`,
      { 'other.conf': 'Host other\n  User bob\n', 'all.conf': 'Host *\n  User mallory\n', 'dot/a.conf': 'HostName 10.1.1.1\n', 'dot/.a.conf.swp': 'Host "broken\n' },
    );
    expect(sshConfigFor('myvm', undefined, file)).toEqual({ hostName: '10.1.1.1', user: 'alice', port: 2201, identityFiles: [] });
    expect(sshConfigFor('third', undefined, file)).toEqual({ hostName: '10.1.1.1', port: 2201, identityFiles: [] });
  });

  test('a proxy is reported: ProxyJump and ProxyCommand are one setting, the first wins, and none is no proxy', () => {
    const file = config(`
Host inner
  ProxyJump bastion
Host other
  ProxyCommand ssh -W %h:%p bastion
Host plain
  ProxyJump none
Host *
  ProxyCommand nc %h %p
`);
    expect(sshConfigFor('inner', undefined, file).proxy).toBe('ProxyJump bastion');
    expect(sshConfigFor('other', undefined, file).proxy).toBe('ProxyCommand ssh -W %h:%p bastion');
    expect(sshConfigFor('plain', undefined, file).proxy).toBeUndefined();
    expect(sshConfigFor('anything', undefined, file).proxy).toBe('ProxyCommand nc %h %p');
  });

  test('UserKnownHostsFile (several files, tokens, none) and HostKeyAlias are read for the host key check', () => {
    const file = config(`
Host box
  HostName 192.0.2.7
  UserKnownHostsFile ~/.ssh/boxes %d/known/%h none
  HostKeyAlias box-key
Host quiet
  UserKnownHostsFile none
  HostKeyAlias none
`);
    expect(sshConfigFor('box', undefined, file)).toEqual({
      hostName: '192.0.2.7',
      identityFiles: [],
      knownHostsFiles: [join(homedir(), '.ssh/boxes'), join(homedir(), 'known/192.0.2.7')],
      hostKeyAlias: 'box-key',
    });
    expect(sshConfigFor('quiet', undefined, file)).toEqual({ identityFiles: [], knownHostsFiles: [] });
  });

  test('no config file is no configuration; a bad one says where', () => {
    expect(sshConfigFor('vm', undefined, join(tempDir('ferry-sshconfig-'), 'missing'))).toEqual({ identityFiles: [] });
    const badPort = config('Include $DIR/ports.conf\n', { 'ports.conf': '\nHost vm\n  Port twenty-two\n' });
    expect(() => sshConfigFor('vm', undefined, badPort)).toThrow(`${join(badPort, '..', 'ports.conf')}:3: Port twenty-two is not a port number`);
    const badQuote = config('Host vm\n  IdentityFile "open\n');
    expect(() => sshConfigFor('vm', undefined, badQuote)).toThrow(`${badQuote}:2: a quote is not closed`);
    const loop = config('Include $DIR/config\n');
    expect(() => sshConfigFor('vm', undefined, loop)).toThrow(/Include nested more than 16 deep/);
  });

  test('a sync target keeps the alias and reads the rest; a VM is recorded resolved; a proxy is refused before connecting', () => {
    const home = tempDir('ferry-sshhome-');
    mkdirSync(join(home, '.ssh'));
    writeFileSync(join(home, '.ssh', 'config'), 'Host vm\n  HostName 192.0.2.7\n  User erin\n  Port 2022\n  IdentityFile ~/.ssh/vm\nHost far\n  ProxyJump vm\n');
    const before = process.env.HOME;
    process.env.HOME = home;
    try {
      const target = parseTarget('vm:shared');
      expect(target).toEqual({ user: 'erin', host: 'vm', port: 2022, path: 'shared', hostName: '192.0.2.7', identityFiles: [join(home, '.ssh/vm')] });
      expect(targetLabel(target)).toBe('ssh://erin@vm:2022/~/shared');
      expect(parseTarget('ssh://frank@vm:22/srv').user).toBe('frank');
      expect(parseTarget('ssh://frank@vm:22/srv').port).toBe(22);
      expect(parseSshTarget('vm')).toEqual({ user: 'erin', host: '192.0.2.7', port: 2022 });
      expect(() => parseTarget('far:/x')).toThrow('far:/x: ~/.ssh/config reaches far through ProxyJump vm, which ferry cannot follow');
      expect(() => parseSshTarget('far')).toThrow('--ssh far: ~/.ssh/config reaches far through ProxyJump vm');
    } finally {
      process.env.HOME = before;
    }
  });

  test.for([
    ['vm:shared', 'shared'],
    ['vm:~/shared', 'shared'],
    ['vm:shared/', 'shared'],
    ['vm:/srv//a/./b/', '/srv/a/b'],
    ['vm:/~backup/x', '/~backup/x'],
    ['ssh://u@vm/~/docs', 'docs'],
    ['ssh://u@vm:2222/home/u/docs/', '/home/u/docs'],
  ] as const)('the guest directory of %j is %j, and its label reads back the same', ([arg, path]) => {
    const target = parseTarget(arg);
    expect(target.path).toBe(path);
    expect(parseTarget(targetLabel(target))).toEqual(target);
  });

  test.for(['vm:', 'vm:~', 'vm:~bob/x', 'vm:/', 'ssh://u@vm/', 'ssh://u@vm/~', 'vm:.//'])('%j names no directory: a usage error', (arg) => {
    expect(() => parseTarget(arg)).toThrow(/give (the|a) directory/);
  });
});
