// Runs `pgfeed <args>` (dist/cli.js) to its exit, in a clean environment:
// only what the caller sets, so no stray PGFEED_* leaks in.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `input`, when given, is written to its stdin; stdin is then closed, so the command reads an end of file. */
export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 20_000, input?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH!, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    // A command that exits without reading its stdin closes the pipe first: EPIPE is no failure here.
    p.stdin.on('error', () => {});
    p.stdin.end(input);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`pgfeed ${args.join(' ')} did not exit within ${timeoutMs / 1000} s\n${stderr}`));
    }, timeoutMs);
    p.on('error', reject);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A failed command: the exit status, nothing on stdout, and one line on stderr, `pgfeed: ...`, matching `says`. Returns the line. */
export function oneLineError(t: Test, r: CliResult, code: 1 | 2, says: RegExp): string {
  const lines = r.stderr.split('\n').filter(Boolean);
  t.equal(r.code, code, `exit ${code}: ${r.stderr}`);
  t.equal(lines.length, 1, `one line on stderr: ${JSON.stringify(r.stderr)}`);
  t.match(lines[0] ?? '', /^pgfeed: /, 'it starts with "pgfeed: "');
  t.match(lines[0] ?? '', says, 'it says what is wrong');
  t.equal(r.stdout, '', 'nothing on stdout');
  return lines[0] ?? '';
}

/** A command that succeeded with --json: exit 0, and stdout is one JSON document, returned parsed. */
export function jsonResult(t: Test, r: CliResult): unknown {
  t.equal(r.code, 0, `exit 0: ${r.stderr}`);
  t.equal(r.stdout.trim().split('\n').length, 1, 'one line on stdout');
  return JSON.parse(r.stdout);
}

export interface RunningCli {
  readonly proc: ReturnType<typeof spawn>;
  /** The complete stdout lines so far. */
  readonly lines: string[];
  readonly stderr: string;
  /** Resolves with the exit status (null if killed by a signal). */
  readonly exited: Promise<number | null>;
  /** Sends `signal` and resolves with the exit status. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `pgfeed <args>` that keeps running (tail), in a clean environment as runCli does; killed at teardown. */
export function startCli(t: { teardown(fn: () => unknown): void }, args: string[], env: Record<string, string> = {}): RunningCli {
  const proc = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH!, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => {
    const parts = (partial + d).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  proc.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const running = () => proc.exitCode === null && proc.signalCode === null;
  t.teardown(async () => {
    if (running()) proc.kill('SIGKILL');
    await exited;
  });
  return {
    proc,
    lines,
    get stderr() {
      return stderr;
    },
    exited,
    stop(signal = 'SIGTERM') {
      if (running()) proc.kill(signal);
      return exited;
    },
  };
}
