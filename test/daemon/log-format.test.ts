// Logs: JSON lines when stdout is a pipe (journald, a file), one pretty
// line per event when it is a terminal; PGFEED_LOG_FORMAT overrides either.
// The terminal is a pseudo-terminal from util-linux's `script`.
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { CLI } from '../helpers/daemon.js';
import { waitUntil } from '../helpers/wait.js';

const noScript = spawnSync('script', ['--version']).error ? 'script (util-linux) is not installed: it gives the daemon a terminal' : false;

interface Run {
  /** Every line of the daemon's stdout (and, on a terminal, its stderr) so far, colours stripped. */
  readonly lines: string[];
  /** SIGTERM to the daemon itself; resolves with its exit status. */
  stop(): Promise<number | null>;
}

/** `pgfeed serve` on port 0, its stdout a pipe or a terminal; resolves once it has logged 'listening'. */
async function serve(t: { teardown(fn: () => unknown): void }, url: string, stdout: 'pipe' | 'terminal', env: Record<string, string> = {}): Promise<Run> {
  const command = `echo pgfeed-pid=$$; exec ${process.execPath} ${CLI} serve`;
  // -e: script exits with the daemon's status.
  const [file, args] = stdout === 'terminal' ? ['script', ['-qefc', command, '/dev/null']] : ['/bin/sh', ['-c', command]];
  const proc = spawn(file, args, {
    env: { PATH: process.env.PATH, SHELL: '/bin/sh', TERM: 'xterm', DATABASE_URL: url, PGFEED_PORT: '0', PGFEED_HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  t.teardown(() => void proc.kill('SIGKILL'));
  const lines: string[] = [];
  // eslint-disable-next-line no-control-regex
  createInterface({ input: proc.stdout! }).on('line', (l) => lines.push(l.replace(/\x1b\[[0-9;]*m/g, '').replace(/\r$/, '')));
  // 'listening' itself, not 'listening for notifications' before it: the signal handlers come with it.
  await waitUntil(() => lines.some((l) => /INFO: listening \{|"msg":"listening"/.test(l)) || proc.exitCode !== null, 30_000, 'the daemon to listen');
  const pid = Number(/^pgfeed-pid=(\d+)$/.exec(lines[0] ?? '')?.[1]);
  return {
    lines,
    async stop() {
      process.kill(pid, 'SIGTERM');
      return exited;
    },
  };
}

/** The daemon's log lines: those after the pid line and before the start-up hints it writes to stderr. */
const logLines = (lines: string[]) => lines.slice(1).filter((l) => !/^(pgfeed is serving on| {2})/.test(l));
const isJson = (line: string) => {
  try {
    return typeof JSON.parse(line) === 'object';
  } catch {
    return false;
  }
};
const PRETTY = /^\[\d\d:\d\d:\d\d\.\d{3}\] (INFO|WARN|ERROR|FATAL|DEBUG|TRACE): \S/;

t.test('on a terminal, one pretty line per event; on a pipe, JSON lines', { skip: noScript }, async (t) => {
  const db = await testDatabase(t);
  const cases: { stdout: 'pipe' | 'terminal'; env: Record<string, string>; pretty: boolean }[] = [
    { stdout: 'terminal', env: {}, pretty: true },
    { stdout: 'pipe', env: {}, pretty: false },
    { stdout: 'terminal', env: { PGFEED_LOG_FORMAT: 'json' }, pretty: false },
    { stdout: 'pipe', env: { PGFEED_LOG_FORMAT: 'pretty' }, pretty: true },
  ];
  for (const c of cases) {
    const name = `${c.stdout}${c.env.PGFEED_LOG_FORMAT ? ` with PGFEED_LOG_FORMAT=${c.env.PGFEED_LOG_FORMAT}` : ''}`;
    const run = await serve(t, db.url, c.stdout, c.env);
    t.equal(await run.stop(), 0, `${name}: a clean exit`);
    const logs = logLines(run.lines);
    t.ok(logs.length >= 3, `${name}: logged (${logs.length} lines)`);
    if (c.pretty) {
      t.same(logs.filter((l) => !PRETTY.test(l)), [], `${name}: every line is pretty, none JSON`);
      t.ok(logs.some((l) => /\] INFO: listening \{"port":\d+,"host":"127\.0\.0\.1"\}$/.test(l)), `${name}: 'listening' with its port, on one line`);
      t.ok(logs.some((l) => /\] INFO: stopped$/.test(l)), `${name}: the last line, 'stopped', is written before the exit`);
    } else {
      t.same(logs.filter((l) => !isJson(l)), [], `${name}: every line is JSON`);
      t.ok(logs.some((l) => isJson(l) && JSON.parse(l).msg === 'stopped'), `${name}: the last line, 'stopped', is written before the exit`);
    }
  }
});
