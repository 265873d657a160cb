// The daemon's JSON log lines reach a pipe in the order they were logged,
// all of them, even when the process exits right after its last line and
// libuv's thread pool is busy (an asynchronous destination queues its
// writes there, and process.exit() then drops them or puts them last).
import { spawnSync } from 'node:child_process';
import t from 'tap';

const script = `
import crypto from 'node:crypto';
import { createLogger } from './src/log.ts';
const log = createLogger('info', 'json');
// Occupy every thread of the pool for a while.
for (let i = 0; i < 4; i++) crypto.pbkdf2('x', 'y', 2_000_000, 32, 'sha512', () => {});
log.info('shutting down');
setTimeout(() => { log.info('stopped'); process.exit(0); }, 50);
`;

t.test('the last lines before process.exit() arrive, in order, with the thread pool busy', async (t) => {
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  t.equal(run.status, 0, run.stderr);
  const msgs = run.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { msg: string }).msg);
  t.same(msgs, ['shutting down', 'stopped']);
});
