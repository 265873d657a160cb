import { execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ServerUser } from './server-user.js';

const run = promisify(execFile);

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

export type StopMode = 'smart' | 'fast' | 'immediate';

export interface ClusterSpec {
  /** Directory with initdb, pg_ctl and postgres. */
  readonly bin: string;
  readonly dataDir: string;
  readonly port: number;
  /** Who the tools run as: the postgres user when pgfeed is root, else the current user (null). */
  readonly user: ServerUser | null;
  /** Server settings, passed as `-c name=value` on every start. */
  readonly settings: Readonly<Record<string, string | number>>;
  /** The server's log (pg_ctl -l). Default: postgres.log in the data directory. */
  readonly logFile?: string;
  /** The superuser's password (password authentication); none means trust. */
  readonly password?: string;
  /** Extra initdb flags, e.g. --no-sync for throw-away clusters. */
  readonly initdbFlags?: readonly string[];
}

/**
 * A Postgres cluster on this machine, driven with its own tools: initdb,
 * then pg_ctl to start, stop and restart it. pg_ctl waits until the server
 * accepts connections, runs it in a session of its own (a Ctrl-C meant for
 * pgfeed does not reach it), and keeps its output in a log that failures
 * quote, so a server that cannot start says why.
 */
export class LocalCluster {
  readonly logFile: string;

  constructor(readonly spec: ClusterSpec) {
    this.logFile = spec.logFile ?? join(spec.dataDir, 'postgres.log');
  }

  get initialised(): boolean {
    return existsSync(join(this.spec.dataDir, 'PG_VERSION'));
  }

  /** initdb into the data directory, created (owned by the server user, 0700) if missing. */
  async init(): Promise<void> {
    const { dataDir, user, password } = this.spec;
    // A directory this initdb fills is emptied again if it fails, so the next start can retry.
    const fresh = !existsSync(dataDir) || readdirSync(dataDir).length === 0;
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    if (user) chownSync(dataDir, user.uid, user.gid);
    chmodSync(dataDir, 0o700);
    const args = ['-D', dataDir, '-U', 'postgres', '-E', 'UTF8', '--locale=C', ...(this.spec.initdbFlags ?? [])];
    let pwFile: string | null = null;
    if (password !== undefined) {
      pwFile = join(tmpdir(), `pgfeed-pw-${process.pid}-${Date.now()}`);
      writeFileSync(pwFile, password + '\n', { mode: 0o600 });
      if (user) chownSync(pwFile, user.uid, user.gid);
      args.push('--auth=scram-sha-256', `--pwfile=${pwFile}`);
    } else {
      args.push('--auth=trust');
    }
    try {
      await this.tool('initdb', args);
    } catch (err) {
      if (fresh) rmSync(dataDir, { recursive: true, force: true });
      throw err;
    } finally {
      if (pwFile) rmSync(pwFile, { force: true });
    }
  }

  private options(): string {
    return [`-p ${this.spec.port}`, ...Object.entries(this.spec.settings).map(([k, v]) => `-c ${k}=${v}`)].join(' ');
  }

  async start(): Promise<void> {
    await this.tool('pg_ctl', ['start', '-D', this.spec.dataDir, '-w', '-t', '60', '-l', this.logFile, '-o', this.options()]);
  }

  /** `fast` is a clean shutdown; `immediate` skips the checkpoint, so the next start runs crash recovery. */
  async restart(mode: StopMode): Promise<void> {
    await this.tool('pg_ctl', ['restart', '-D', this.spec.dataDir, '-m', mode, '-w', '-t', '60', '-l', this.logFile, '-o', this.options()]);
  }

  async stop(mode: StopMode = 'fast'): Promise<void> {
    if (!existsSync(join(this.spec.dataDir, 'postmaster.pid'))) return;
    await this.tool('pg_ctl', ['stop', '-D', this.spec.dataDir, '-m', mode, '-w', '-t', '60']);
  }

  /** Whether a server runs on the data directory (one left by an earlier process, say). */
  async running(): Promise<boolean> {
    if (!existsSync(join(this.spec.dataDir, 'postmaster.pid'))) return false;
    try {
      await this.tool('pg_ctl', ['status', '-D', this.spec.dataDir]);
      return true;
    } catch {
      return false;
    }
  }

  private async tool(name: string, args: string[]): Promise<string> {
    const { user } = this.spec;
    const logFrom = sizeOf(this.logFile);
    try {
      const { stdout } = await run(join(this.spec.bin, name), args, {
        timeout: 120_000,
        maxBuffer: 16 * 1024 * 1024,
        ...(user ? { uid: user.uid, gid: user.gid } : {}),
      });
      return stdout;
    } catch (err) {
      throw new Error(`${name} failed: ${this.cause(err, logFrom)}`, { cause: err });
    }
  }

  /** The one line that says why: the last FATAL/PANIC/ERROR this run logged, else the tool's own words. */
  private cause(err: unknown, logFrom: number): string {
    const e = err as { code?: string; stderr?: string; stdout?: string; message: string };
    if (e.code === 'EACCES' || e.code === 'ENOENT') return `${e.message} (is ${this.spec.bin} reachable${this.spec.user ? ` by the ${this.spec.user.name} user` : ''}?)`;
    let fromLog = '';
    try {
      const lines = readFileSync(this.logFile).subarray(logFrom).toString('utf8').split('\n');
      // A busy port is logged as "could not bind ...: Address already in use"
      // before the FATAL line that only says no socket could be made.
      const line = lines.filter((l) => /could not bind/.test(l)).at(-1) ?? lines.filter((l) => /\b(FATAL|PANIC|ERROR):/.test(l)).at(-1);
      fromLog = line?.replace(/^.*?\b(FATAL|PANIC|ERROR|LOG):\s*/, '') ?? '';
    } catch {
      // No log yet (initdb, or a start that never got that far).
    }
    const own = (e.stderr || e.stdout || e.message).trim().split('\n').filter(Boolean);
    const said = own.find((l) => /error|fatal|could not|cannot|denied/i.test(l)) ?? own[0] ?? e.message;
    return fromLog ? `${fromLog} (log: ${this.logFile})` : said;
  }
}
