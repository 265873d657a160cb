// One pgfeed replica as a real OS process: spawn `node dist/cli.js serve`,
// learn its port from the "listening" log line, and expose the signals the
// fault schedule sends it. A replica lives through many incarnations (one per
// restart); clients ask it for its current URL each time they connect.

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, type WriteStream } from 'node:fs';
import { request, type ClientRequest } from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { daemonEnv } from '../helpers/daemon-env.js';
import { sleep } from '../helpers/wait.js';

export type ReplicaState = 'down' | 'starting' | 'up' | 'frozen';

export interface ReplicaOptions {
  name: string;
  root: string;
  databaseUrl: string;
  logDir: string;
  env?: Record<string, string>;
  /** Called for anything the daemon must never print: a fatal record
   *  (unhandled rejection, uncaught exception) or an exit we did not ask for. */
  onViolation: (what: string) => void;
}

export interface HttpResult {
  status: number;
  body: string;
}

/** A tiny GET with a hard timeout; a frozen daemon must not hang the runner.
 *  `onRequest` receives the request, for a caller that may abort it. */
export function httpGet(url: string, timeoutMs = 3000, onRequest?: (req: ClientRequest) => void): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    onRequest?.(req);
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

// Node prints these on stderr for reasons that are not daemon faults.
const BENIGN_STDERR = [/ExperimentalWarning/, /--trace-warnings/, /^\s*$/];

export class Replica {
  readonly name: string;
  state: ReplicaState = 'down';
  port: number | null = null;
  incarnation = 0;
  /** RSS (bytes) of the current incarnation shortly after it became ready. */
  baselineRss = 0;
  /** Set when the process exited without being asked to; the runner restarts it. */
  crashed = false;
  private child: ChildProcess | null = null;
  private expectingExit = false;
  private exitWaiters: Array<(r: { code: number | null; signal: NodeJS.Signals | null }) => void> = [];
  private log: WriteStream;
  private readonly opts: ReplicaOptions;

  constructor(opts: ReplicaOptions) {
    this.opts = opts;
    this.name = opts.name;
    this.log = createWriteStream(join(opts.logDir, `replica-${opts.name}.log`), { flags: 'a' });
  }

  get logPath(): string {
    return join(this.opts.logDir, `replica-${this.name}.log`);
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /** The base URL while the replica accepts connections, else null. */
  url(): string | null {
    return this.state === 'up' || this.state === 'frozen' ? `http://127.0.0.1:${this.port}` : null;
  }

  async start(timeoutMs = 60_000): Promise<void> {
    if (this.child) throw new Error(`replica ${this.name} is already running (pid ${this.child.pid}); kill it first`);
    // PGFEED_FAULTS_DAEMON points the suite at another build of the CLI.
    const cli = process.env.PGFEED_FAULTS_DAEMON ?? join(this.opts.root, 'dist', 'cli.js');
    if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build first (or set PGFEED_FAULTS_DAEMON)`);
    this.incarnation++;
    this.crashed = false;
    this.state = 'starting';
    this.expectingExit = false;
    this.log.write(`--- incarnation ${this.incarnation} ${new Date().toISOString()}\n`);
    const child = spawn(process.execPath, [cli, 'serve'], {
      cwd: this.opts.root,
      env: daemonEnv({
        DATABASE_URL: this.opts.databaseUrl,
        PGFEED_HOST: '127.0.0.1',
        PGFEED_PORT: '0',
        PGFEED_LOG_LEVEL: 'info',
        ...this.opts.env,
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const incarnation = this.incarnation;

    const listening = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`replica ${this.name} did not log "listening" within ${timeoutMs} ms; see ${this.logPath}`)), timeoutMs);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        this.log.write(line + '\n');
        let rec: { level?: number; msg?: string; port?: number; err?: unknown } | null = null;
        try {
          rec = JSON.parse(line);
        } catch {
          rec = null;
        }
        if (rec && rec.msg === 'listening' && typeof rec.port === 'number') {
          clearTimeout(timer);
          resolve(rec.port);
        }
        const text = rec?.msg ?? line;
        if ((rec && (rec.level ?? 0) >= 60) || /unhandled|uncaught/i.test(text)) {
          this.opts.onViolation(`replica ${this.name}#${incarnation} logged a fatal record: ${line.slice(0, 400)}`);
        }
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`replica ${this.name} exited (code ${code}, signal ${signal}) before listening; see ${this.logPath}`));
      });
    });
    createInterface({ input: child.stderr! }).on('line', (line) => {
      this.log.write(`[stderr] ${line}\n`);
      if (BENIGN_STDERR.some((re) => re.test(line))) return;
      if (/unhandled|uncaught|error/i.test(line)) {
        this.opts.onViolation(`replica ${this.name}#${incarnation} wrote to stderr: ${line.slice(0, 400)}`);
      }
    });
    child.on('exit', (code, signal) => {
      this.log.write(`--- exit code=${code} signal=${signal} ${new Date().toISOString()}\n`);
      if (this.child === child) {
        this.child = null;
        this.state = 'down';
        this.port = null;
      }
      if (!this.expectingExit) {
        this.crashed = true;
        this.opts.onViolation(`replica ${this.name}#${incarnation} exited on its own (code ${code}, signal ${signal}); see ${this.logPath}`);
      }
      const waiters = this.exitWaiters;
      this.exitWaiters = [];
      for (const w of waiters) w({ code, signal });
    });

    this.port = await listening;
    this.state = 'up';
  }

  /** Deliver a signal and wait for the exit. Returns how long the exit took. */
  async kill(signal: 'SIGKILL' | 'SIGTERM', timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number; timedOut: boolean }> {
    const child = this.child;
    if (!child) return { code: null, signal: null, ms: 0, timedOut: false };
    this.expectingExit = true;
    if (this.state === 'frozen') child.kill('SIGCONT');
    const t0 = Date.now();
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => this.exitWaiters.push(resolve));
    child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)));
    const r = await Promise.race([exited, timeout]);
    clearTimeout(timer);
    if (r) return { ...r, ms: Date.now() - t0, timedOut: false };
    child.kill('SIGKILL');
    const r2 = await exited;
    return { ...r2, ms: Date.now() - t0, timedOut: true };
  }

  freeze(): void {
    if (!this.child || this.state !== 'up') return;
    this.child.kill('SIGSTOP');
    this.state = 'frozen';
  }

  thaw(): void {
    if (!this.child || this.state !== 'frozen') return;
    this.child.kill('SIGCONT');
    this.state = 'up';
  }

  /** Poll /readyz until 200. Returns the time it took, or null on timeout. */
  async waitReady(timeoutMs: number): Promise<number | null> {
    const t0 = Date.now();
    while (Date.now() - t0 < timeoutMs) {
      const url = this.url();
      if (url) {
        try {
          const r = await httpGet(`${url}/readyz`, 2000);
          if (r.status === 200) return Date.now() - t0;
        } catch {
          // Not up yet.
        }
      }
      await sleep(100);
    }
    return null;
  }

  async lastReadyz(): Promise<string> {
    const url = this.url();
    if (!url) return `(replica ${this.name} is ${this.state})`;
    try {
      const r = await httpGet(`${url}/readyz`, 2000);
      return `${r.status} ${r.body.slice(0, 500)}`;
    } catch (err) {
      return String(err);
    }
  }

  /** Resident set size in bytes, from /proc (Linux only). */
  rss(): number {
    const pid = this.child?.pid;
    if (!pid) return 0;
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : 0;
    } catch {
      return 0;
    }
  }

  /** One Prometheus series (first line whose labels contain `labels`), or null. */
  async gauge(name: string, labels: string): Promise<number | null> {
    const url = this.url();
    if (!url || this.state !== 'up') return null;
    try {
      const r = await httpGet(`${url}/metrics`, 3000);
      for (const line of r.body.split('\n')) {
        if (line.startsWith(`${name}{`) && line.includes(labels)) return Number(line.slice(line.lastIndexOf(' ') + 1));
      }
      return null;
    } catch {
      return null;
    }
  }

  /** Sum of pgfeed_subscribers over all states, or null when unreachable. */
  async subscribers(): Promise<{ total: number; text: string } | null> {
    const url = this.url();
    if (!url) return null;
    try {
      const r = await httpGet(`${url}/metrics`, 3000);
      if (r.status !== 200) return null;
      let total = 0;
      const lines: string[] = [];
      for (const line of r.body.split('\n')) {
        const m = /^pgfeed_subscribers(\{[^}]*\})?\s+([0-9.eE+-]+)/.exec(line);
        if (m) {
          total += Number(m[2]);
          lines.push(line);
        }
      }
      return { total, text: lines.join('; ') || '(no pgfeed_subscribers series)' };
    } catch {
      return null;
    }
  }

  async close(): Promise<void> {
    if (this.child) await this.kill('SIGKILL', 5000);
    await new Promise<void>((resolve) => this.log.end(resolve));
  }
}
