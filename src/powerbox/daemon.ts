/**
 * `ferry daemon`: the powerbox in the foreground. It resumes every grant,
 * serves the control socket, and on SIGTERM or SIGINT stops each grant's
 * session after its current batch (every write is crash-safe regardless)
 * and exits 0.
 */

import { requireOpenat2 } from '../fs/native.js';
import { Store } from '../state/store.js';
import { PowerboxStore } from '../state/powerbox-store.js';
import { ControlServer, controlSocketPath } from './control.js';
import { Powerbox } from './powerbox.js';

/** runDaemon serves until a signal stops it; returns the exit status. */
export async function runDaemon(home: string): Promise<number> {
  requireOpenat2();
  const store = Store.open(home);
  const say = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  const powerbox = new Powerbox(store, new PowerboxStore(store), say);
  const path = controlSocketPath(home);
  let server: ControlServer;
  try {
    server = await ControlServer.listen(path, powerbox.handlers(), (uid) => {
      store.log('control-refused', null, null, `a connection from uid ${uid} to the control socket was refused`);
      say(`refused a connection from uid ${uid}`);
    });
  } catch (error) {
    store.close();
    throw error;
  }
  // One VM's failure must not stop the others: a promise rejected with
  // nobody to hear it is a bug of ferry's, said and logged, not a crash.
  process.on('unhandledRejection', (reason) => {
    const text = reason instanceof Error ? (reason.stack ?? reason.message) : String(reason);
    say(`internal error (the daemon goes on): ${text}`);
    store.log('internal-error', null, null, text.split('\n')[0] ?? text);
  });
  powerbox.start();
  say(`ferry daemon ${process.pid} serving ${path}`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      say(`${signal}: stopping`);
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await server.close();
  await powerbox.stop();
  store.close();
  say('stopped');
  // Every grant is stopped and the store closed: a connection to a guest that
  // has not finished closing must not keep the process alive.
  setTimeout(() => process.exit(0), 2_000).unref();
  return 0;
}
