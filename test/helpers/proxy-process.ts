// A real reverse proxy (nginx, haproxy) as a child process in front of
// daemons: started, waited for until it proxies /healthz, and stopped in
// teardown the way its own documentation stops it.
import { spawn } from 'node:child_process';
import { waitUntil } from './wait.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface ProxyProcessOptions {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  /** The port it listens on, on loopback. */
  readonly port: number;
  /** How it stops gracefully: SIGQUIT for nginx, SIGTERM for haproxy. */
  readonly stopSignal: NodeJS.Signals;
  /** More to show if it exits before proxying (nginx writes its errors to a file). */
  readonly log?: () => string;
}

/** Starts the proxy and resolves with its base URL once /healthz answers through it. */
export async function startProxyProcess(t: Teardown, o: ProxyProcessOptions): Promise<string> {
  const proc = spawn(o.command, [...o.args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout!.on('data', (d) => (output += d));
  proc.stderr!.on('data', (d) => (output += d));
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(o.stopSignal);
    await exited;
  });
  const base = `http://127.0.0.1:${o.port}`;
  await waitUntil(async () => {
    if (proc.exitCode !== null) throw new Error(`${o.name} exited: ${output}${o.log?.() ?? ''}`);
    return fetch(`${base}/healthz`).then((r) => r.ok, () => false);
  }, 10_000, `${o.name} to proxy /healthz`);
  return base;
}
