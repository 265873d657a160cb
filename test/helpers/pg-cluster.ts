// A dedicated, throw-away Postgres cluster that a test may crash and restart
// at will. Shared test databases cannot be restarted, so the fault suite and
// the crash tests bring their own: initdb into a temp dir, a random loopback
// port below the ephemeral range (it must be free again after a restart),
// fsync off.

import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { LocalCluster, type ClusterSpec } from '../../src/db/cluster.js';
import { freeLowPort } from './free-port.js';
import { scratchCluster } from './scratch-postgres.js';
import { sleep } from './wait.js';

export type RestartMode = 'fast' | 'immediate';

export interface ClusterOptions {
  /** Extra server settings, passed as `-c name=value` on every start. */
  readonly settings?: Readonly<Record<string, string | number>>;
  /** A Postgres bin dir to run instead of the embedded one (it wins over PGFEED_FAULTS_PG_BIN). */
  readonly bin?: string;
  /** Fills the data directory instead of initdb (a base backup, say); it runs as the server user. */
  readonly init?: (spec: ClusterSpec) => Promise<void>;
  /** Temporary directory name prefix. */
  readonly prefix?: string;
}

/** PGFEED_FAULTS_PG_BIN runs the cluster on another Postgres build, e.g. Debian's 15. */
function binOverride(): string | null {
  const dir = process.env.PGFEED_FAULTS_PG_BIN;
  if (!dir) return null;
  if (!existsSync(join(dir, 'pg_ctl'))) {
    throw new Error(`PGFEED_FAULTS_PG_BIN=${dir} has no pg_ctl; point it at a Postgres bin dir such as /usr/lib/postgresql/15/bin`);
  }
  return dir;
}

export class Cluster {
  private running = false;

  private constructor(private readonly local: LocalCluster) {}

  /** initdb + start. The caller owns the result and must call destroy(). */
  static async create(opts: ClusterOptions = {}): Promise<Cluster> {
    const scratch = await scratchCluster(opts.prefix ?? 'pgfeed-faults-pg-', await freeLowPort(), {
      // fsync=off is safe here: crashes are of the postmaster, never of the OS.
      // synchronous_commit stays on, or an immediate restart would lose
      // acknowledged commits and reuse their xids (a test that wants exactly
      // that turns it off for its own transactions).
      fsync: 'off',
      full_page_writes: 'off',
      max_connections: 200,
      shared_buffers: '64MB',
      ...opts.settings,
    });
    const bin = opts.bin ?? binOverride();
    const cluster = new Cluster(bin ? new LocalCluster({ ...scratch.spec, bin }) : scratch);
    try {
      await (opts.init ? opts.init(cluster.local.spec) : cluster.local.init());
      await cluster.start();
    } catch (err) {
      await cluster.destroy();
      throw err;
    }
    return cluster;
  }

  get port(): number {
    return this.local.spec.port;
  }

  /** The directory holding the data and the server log. */
  get dir(): string {
    return join(this.local.spec.dataDir, '..');
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  async start(): Promise<void> {
    await this.local.start();
    this.running = true;
  }

  /** pg_ctl restart: `fast` is a clean shutdown, `immediate` skips the
   *  checkpoint, so the next start runs crash recovery. */
  async restart(mode: RestartMode): Promise<void> {
    this.running = false;
    await this.local.restart(mode);
    this.running = true;
  }

  async stop(mode: RestartMode = 'fast'): Promise<void> {
    this.running = false;
    await this.local.stop(mode);
  }

  get isRunning(): boolean {
    return this.running;
  }

  async destroy(): Promise<void> {
    try {
      await this.stop('immediate');
    } catch {
      // Best effort: the cluster may never have started.
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A fresh client with an error handler attached: a restart must never
   *  crash the runner through an unhandled 'error' event. */
  async connect(applicationName = 'pgfeed-faults'): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: this.url, application_name: applicationName, connectionTimeoutMillis: 5000 });
    client.on('error', () => {});
    await client.connect();
    return client;
  }

  /** Run one statement on a short-lived connection, retrying while Postgres
   *  is coming back up. */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params: unknown[] = [], deadlineMs = 60_000): Promise<pg.QueryResult<R>> {
    const until = Date.now() + deadlineMs;
    for (let attempt = 0; ; attempt++) {
      let client: pg.Client | undefined;
      try {
        client = await this.connect();
        return await client.query<R>(sql, params);
      } catch (err) {
        const code = (err as { code?: string }).code;
        // SQL errors are final; only connection trouble (class 08, 57, or no
        // SQLSTATE at all) is worth waiting out.
        if (code && !code.startsWith('08') && !code.startsWith('57')) throw err;
        if (Date.now() > until) throw new Error(`query failed for ${deadlineMs} ms: ${sql.slice(0, 80)}`, { cause: err });
        await sleep(Math.min(100 * 2 ** attempt, 1000));
      } finally {
        await client?.end().catch(() => {});
      }
    }
  }
}
