// A fake NOTIFY_SOCKET: the AF_UNIX datagram socket systemd's manager would
// own, for a test to read what pgfeed tells systemd. Node cannot bind one, so
// a python3 process does, and prints each datagram as one JSON line.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { waitUntil } from './wait.js';

/** Why the notify tests cannot run here, or false. */
export const notifySkip: string | false = spawnSync('python3', ['--version']).error
  ? 'python3 is not installed: it binds the fake NOTIFY_SOCKET'
  : spawnSync('systemd-notify', ['--help']).error
    ? 'systemd-notify is not installed (Debian: apt-get install systemd): pgfeed sends its notifications with it'
    : false;

const SERVER = `
import json, socket, sys
address = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\\0" + address[1:] if address.startswith("@") else address)
print(json.dumps({"bound": True}), flush=True)
while True:
    print(json.dumps({"datagram": s.recv(65536).decode("utf-8", "replace")}), flush=True)
`;

export interface NotifySocket {
  /** The NOTIFY_SOCKET value. */
  readonly address: string;
  /** Every datagram received so far, in order. */
  readonly messages: readonly string[];
  /** Resolves with the index of the first message from `from` on that `matches`. */
  waitFor(matches: (message: string) => boolean, what: string, from?: number, timeoutMs?: number): Promise<number>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Binds a socket at a fresh path, or in the abstract namespace ("@name") with `abstract`. */
export async function startNotifySocket(t: Teardown, opts: { abstract?: boolean } = {}): Promise<NotifySocket> {
  const dir = mkdtempSync(join(tmpdir(), 'pgfeed-notify-'));
  const address = opts.abstract ? `@pgfeed-test-${process.pid}-${Date.now()}` : join(dir, 'notify');
  const proc = spawn('python3', ['-c', SERVER, address], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const messages: string[] = [];
  let bound = false;
  createInterface({ input: proc.stdout }).on('line', (line) => {
    const rec = JSON.parse(line) as { bound?: true; datagram?: string };
    if (rec.bound) bound = true;
    if (rec.datagram !== undefined) messages.push(rec.datagram);
  });
  await waitUntil(() => bound || proc.exitCode !== null, 10_000, `python3 to bind ${address}`);
  if (!bound) throw new Error(`python3 could not bind ${address}`);
  return {
    address,
    messages,
    async waitFor(matches, what, from = 0, timeoutMs = 30_000) {
      const found = () => messages.findIndex((m, i) => i >= from && matches(m));
      await waitUntil(() => found() >= 0, timeoutMs, `${what} on NOTIFY_SOCKET (got ${JSON.stringify(messages)})`);
      return found();
    },
  };
}

/** The assignments of one message: "READY=1\nSTATUS=x" is READY and STATUS. */
export function assignments(message: string): Map<string, string> {
  return new Map(message.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}
