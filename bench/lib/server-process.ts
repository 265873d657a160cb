// The servers under test, each in its own process so that its CPU and RSS
// can be read from /proc: pgfeed itself (dist/cli.js serve), and the raw and
// naive comparators. All three log a JSON line {"msg":"listening","port":N}.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { daemonEnv } from '../../test/helpers/daemon-env.js';

export type ServerKind = 'pgfeed' | 'raw' | 'naive';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export const QUERY_METRIC: Record<ServerKind, string> = {
  pgfeed: 'pgfeed_db_queries_total',
  raw: 'raw_db_queries_total',
  naive: 'naive_db_queries_total',
};

export interface ServerOptions {
  databaseUrl?: string;
  port?: number;
  env?: Record<string, string>;
  /** pgfeed only: the cli.js to run instead of PGFEED_BENCH_DAEMON or this tree's build. */
  daemon?: string;
}

// Servers still running when the bench exits (an error, a Ctrl-C) are
// killed rather than left holding ports and thousands of sockets.
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

export class ServerProcess {
  private constructor(
    readonly kind: ServerKind,
    readonly proc: ChildProcess,
    readonly port: number,
    private readonly logTail: string[],
  ) {}

  get pid(): number {
    return this.proc.pid!;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(kind: ServerKind, o: ServerOptions = {}): Promise<ServerProcess> {
    // PGFEED_BENCH_DAEMON points at another build's cli.js, to compare builds.
    // PGFEED_BENCH_NODE_ARGS adds Node flags to pgfeed's process only, e.g.
    // "--cpu-prof --cpu-prof-dir=/tmp/prof" (Node refuses --cpu-prof in NODE_OPTIONS).
    const nodeArgs = kind === 'pgfeed' ? (process.env.PGFEED_BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean) : [];
    const args =
      kind === 'pgfeed'
        ? [...nodeArgs, o.daemon ?? process.env.PGFEED_BENCH_DAEMON ?? `${ROOT}dist/cli.js`, 'serve']
        : ['--import', 'tsx', `${ROOT}bench/${kind}-server.ts`];
    const proc = spawn(process.execPath, args, {
      cwd: ROOT,
      env: daemonEnv({
        ...(o.databaseUrl ? { DATABASE_URL: o.databaseUrl } : {}),
        PGFEED_HOST: '127.0.0.1',
        PGFEED_PORT: String(o.port ?? 0),
        PGFEED_LOG_LEVEL: process.env.PGFEED_LOG_LEVEL ?? 'info',
        ...o.env,
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(proc);
    proc.once('exit', () => live.delete(proc));
    const tail: string[] = [];
    const keep = (line: string) => {
      tail.push(line);
      if (tail.length > 40) tail.shift();
    };
    createInterface({ input: proc.stderr! }).on('line', keep);
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`${kind} did not log "listening" within 30 s`)), 30_000);
      const fail = (e: Error) => {
        clearTimeout(timer);
        proc.kill('SIGKILL');
        reject(new Error(`${e.message}\n${tail.join('\n')}`));
      };
      proc.once('exit', (code) => fail(new Error(`${kind} exited with ${code} before listening`)));
      createInterface({ input: proc.stdout! }).on('line', (line) => {
        keep(line);
        if (!line.includes('"listening"')) return;
        try {
          const j = JSON.parse(line) as { port?: number };
          if (typeof j.port === 'number') {
            clearTimeout(timer);
            proc.removeAllListeners('exit');
            resolve(j.port);
          }
        } catch {
          // Not JSON: keep waiting.
        }
      });
    });
    return new ServerProcess(kind, proc, port, tail);
  }

  get queryMetric(): string {
    return QUERY_METRIC[this.kind];
  }

  /** Set when the process ended on its own (a crash), before close() was called. */
  get exitedEarly(): string | null {
    if (this.closing) return null;
    if (this.proc.exitCode !== null) return `exit ${this.proc.exitCode}`;
    if (this.proc.signalCode !== null) return this.proc.signalCode;
    return null;
  }

  private closing = false;

  /** The last log lines, for error messages. */
  logs(): string {
    return this.logTail.join('\n');
  }

  /** SIGTERM and wait for exit; SIGKILL after `graceMs`. Returns ms taken and the exit code. */
  async close(graceMs = 10_000): Promise<{ ms: number; code: number | null }> {
    const t0 = performance.now();
    this.closing = true;
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return { ms: 0, code: this.proc.exitCode };
    const exited = new Promise<number | null>((r) => this.proc.once('exit', (code) => r(code)));
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    const code = await exited;
    clearTimeout(t);
    return { ms: performance.now() - t0, code };
  }
}
