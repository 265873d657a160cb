// Runs the real daemon as a process (dist/cli.js, built by `npm test`'s
// pretest) on port 0, and reads its pino lines from stdout.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The built command line, `pgfeed` (dist/cli.js). */
export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface DaemonProcess {
  readonly port: number;
  readonly proc: ChildProcess;
  /** Every log line so far, parsed. */
  readonly logs: Record<string, unknown>[];
  readonly base: string;
  /** Everything written to stderr so far (start-up hints, fatal errors). */
  readonly stderr: string;
  /** Sends a signal and resolves with the exit code (null if killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

/**
 * Starts `pgfeed serve` on port 0. A null databaseUrl leaves DATABASE_URL
 * unset, so the daemon starts its embedded Postgres (give it
 * PGFEED_DATA_DIR and PGFEED_EMBEDDED_PORT).
 */
export async function startDaemon(
  t: Teardown,
  databaseUrl: string | null,
  env: Record<string, string> = {},
  args: string[] = [],
  /** Another checkout to run, from its own directory (default: this one's dist/cli.js, here). */
  where: { cwd?: string; cli?: string } = {},
): Promise<DaemonProcess> {
  const proc = spawn(process.execPath, [where.cli ?? CLI, 'serve', ...args], {
    ...(where.cwd ? { cwd: where.cwd } : {}),
    env: {
      PATH: process.env.PATH,
      ...(databaseUrl === null ? {} : { DATABASE_URL: databaseUrl }),
      PGFEED_PORT: '0',
      PGFEED_HOST: '127.0.0.1',
      PGFEED_LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    // An embedded Postgres is initialised on first start: allow it time.
    const limitS = databaseUrl === null ? 90 : 30;
    const timer = setTimeout(() => reject(new Error(`daemon did not start in ${limitS} s\n${stderr}`)), limitS * 1000);
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line);
      } catch {
        return;
      }
      logs.push(rec);
      if (rec.msg === 'listening') {
        clearTimeout(timer);
        resolve(rec.port as number);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited with ${code} before listening\n${stderr}`));
    });
  });
  const d: DaemonProcess = {
    port,
    proc,
    logs,
    base: `http://127.0.0.1:${port}`,
    get stderr() {
      return stderr;
    },
    exited,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
  });
  return d;
}

/**
 * Reads one metric (summed over the label sets that match `labels`) from
 * /metrics. Throws if the daemon does not export `name` at all, so that a
 * misspelt or renamed metric fails the test instead of reading as 0; a
 * label set that matches no sample does sum to 0.
 */
export async function metric(base: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  if (!text.includes(`\n# TYPE ${name} `) && !text.startsWith(`# TYPE ${name} `)) throw new Error(`/metrics has no metric named ${name}`);
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-z_][a-z0-9_]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const ls = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => ls.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}
