/**
 * `ferry demo`: ferry's main job on a built-in example, in a temp folder —
 * an initial sync, a change on each side, a conflict, and its resolution.
 */

import { chmodSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../state/store.js';
import { resolveCommand, showConflictCommand } from './conflicts.js';
import { EXIT } from './output.js';
import { syncCommand } from './sync.js';

function step(text: string): void {
  process.stdout.write(`\n== ${text}\n`);
}

/** demoCommand runs the demo and returns 0 when every step behaved as it should. */
export async function demoCommand(): Promise<number> {
  const top = mkdtempSync(join(tmpdir(), 'ferry-demo-'));
  const alpha = join(top, 'host');
  const beta = join(top, 'guest');
  mkdirSync(alpha);
  mkdirSync(beta);
  writeFileSync(join(alpha, 'todo.txt'), 'buy milk\nwrite report\n');
  mkdirSync(join(alpha, 'photos'));
  writeFileSync(join(alpha, 'photos', 'cat.txt'), 'a picture of a cat\n');
  writeFileSync(join(alpha, 'run.sh'), '#!/bin/sh\necho hello\n');
  chmodSync(join(alpha, 'run.sh'), 0o755);
  symlinkSync('/etc/passwd', join(alpha, 'passwords'));

  const store = Store.open(join(top, 'state'));
  const sync = () => syncCommand(store, [alpha, beta, '--once']);
  let ok = true;
  try {
    process.stdout.write(`ferry demo in ${top}\n  alpha (host side):  ${alpha}\n  beta (guest side):  ${beta}\n  state (FERRY_HOME): ${join(top, 'state')}\n`);

    step('initial sync: everything on the host reaches the guest; the symlink is reported, not followed; run.sh arrives without its exec bit');
    ok &&= (await sync()) === EXIT.ok;

    step('a change on each side: the guest edits photos/cat.txt, the host adds notes.md');
    writeFileSync(join(beta, 'photos', 'cat.txt'), 'a picture of a cat, edited in the guest\n');
    writeFileSync(join(alpha, 'notes.md'), '# notes\n');
    ok &&= (await sync()) === EXIT.ok;

    step('both sides edit todo.txt: a conflict halts that file only (exit status 3)');
    writeFileSync(join(alpha, 'todo.txt'), 'buy milk\nwrite report\ncall mum\n');
    writeFileSync(join(beta, 'todo.txt'), 'buy oat milk\nwrite report\n');
    writeFileSync(join(alpha, 'photos', 'dog.txt'), 'a picture of a dog\n');
    ok &&= (await sync()) === EXIT.conflicts;
    const conflict = store.openConflicts()[0];
    if (conflict === undefined) return EXIT.error;

    step(`ferry conflicts show ${conflict.id}`);
    await showConflictCommand(store, [String(conflict.id)]);

    step(`ferry resolve ${conflict.id} --keep both, then sync again`);
    await resolveCommand(store, [String(conflict.id), '--keep', 'both']);
    ok &&= (await sync()) === EXIT.ok;

    step('the guest now holds');
    process.stdout.write(`todo.txt:\n${readFileSync(join(beta, 'todo.txt'), 'utf8')}`);
    process.stdout.write(`\nTry it yourself: edit files in ${alpha} or ${beta}, then run\n  npx ferry sync ${alpha} ${beta}\nwith FERRY_HOME=${join(top, 'state')} to use the demo's state.\n`);
  } finally {
    store.close();
  }
  if (!ok) process.stderr.write('ferry demo: a step did not behave as expected (see above)\n');
  return ok ? EXIT.ok : EXIT.error;
}
