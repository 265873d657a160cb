// The unit's SystemCallFilter= lets the daemon do its work: every system
// call a daemon makes while it starts, serves a stream, feeds the watchdog
// through systemd-notify and shuts down (traced with strace -f) is one the
// filter allows. A call outside it would fail with EPERM under systemd
// (SystemCallErrorNumber=), which a test without a booted systemd cannot
// see otherwise: a newer Node or dependency calling something new fails here.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { emit } from '../helpers/change-log.js';
import { CLI } from '../helpers/daemon.js';
import { notifySkip, startNotifySocket } from '../helpers/notify-socket.js';
import { connectSse } from '../helpers/sse-client.js';
import { serviceLines } from '../helpers/unit-file.js';
import { waitUntil } from '../helpers/wait.js';

const skip = spawnSync('strace', ['-V']).error
  ? 'strace is not installed (Debian: apt-get install strace)'
  : spawnSync('systemd-analyze', ['--version']).error
    ? 'systemd-analyze is not installed: it names the calls of each @group'
    : notifySkip;

/** The calls of one filter entry: a call, or an @group with its nested groups. */
function calls(entry: string): string[] {
  if (!entry.startsWith('@')) return [entry];
  const r = spawnSync('systemd-analyze', ['syscall-filter', entry], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`systemd-analyze syscall-filter ${entry}: ${r.stderr}`);
  // The first line names the group; the members follow, indented, with # comments.
  const members = r.stdout.split('\n').slice(1).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  return members.flatMap(calls);
}

/** What SystemCallFilter= lines allow, applied in order: an allow list, less each ~ line, plus each later one. */
function allowedCalls(lines: string[]): Set<string> {
  const allowed = new Set<string>();
  for (const line of lines) {
    const deny = line.startsWith('~');
    for (const entry of line.replace(/^~/, '').split(/\s+/).filter(Boolean)) {
      for (const c of calls(entry)) deny ? allowed.delete(c) : allowed.add(c);
    }
  }
  return allowed;
}

t.test('every system call the daemon makes is allowed by SystemCallFilter=', { skip }, async (t) => {
  const filter = serviceLines().get('SystemCallFilter') ?? [];
  t.notOk(filter[0]?.startsWith('~'), 'the filter is an allow list');
  const allowed = allowedCalls(filter);
  t.ok(allowed.has('read') && !allowed.has('reboot') && !allowed.has('setuid'), 'the filter was read: read allowed, reboot and setuid not');

  const db = await testDatabase(t);
  const socket = await startNotifySocket(t);
  const dir = mkdtempSync(join(tmpdir(), 'pgfeed-strace-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const summary = join(dir, 'summary');
  // -f follows V8's and libuv's threads and the systemd-notify children; -c counts the calls.
  const proc = spawn('strace', ['-f', '-c', '-o', summary, process.execPath, CLI, 'serve'], {
    env: { PATH: process.env.PATH, DATABASE_URL: db.url, PGFEED_PORT: '0', PGFEED_HOST: '127.0.0.1', NOTIFY_SOCKET: socket.address, WATCHDOG_USEC: '200000' },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  t.teardown(() => void proc.kill('SIGKILL'));
  let port = 0;
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    const rec = JSON.parse(line) as { msg?: string; port?: number };
    if (rec.msg === 'listening') port = rec.port!;
  });
  await waitUntil(() => port > 0 || proc.exitCode !== null, 60_000, 'the traced daemon to listen');
  t.ok(port > 0, 'the traced daemon listens');

  const sse = await connectSse(`http://127.0.0.1:${port}/v1/events?project=p&after=0`);
  t.teardown(() => sse.close());
  await emit(db.pool, 'p', 'tick', 3);
  await sse.waitFor((c) => c.seqs.length === 3, 10_000, 'three events');
  for (const path of ['/metrics', '/readyz', '/healthz']) await (await fetch(`http://127.0.0.1:${port}${path}`)).text();
  await socket.waitFor((m) => m === 'WATCHDOG=1', 'a keepalive');
  sse.close();

  // strace's child is the daemon: SIGTERM to it, as systemd would send it.
  const daemon = Number(readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8').trim().split(' ')[0]);
  process.kill(daemon, 'SIGTERM');
  t.equal(await exited, 0, 'a clean exit');

  // strace -c: a table whose last column is the call, closed by a "total" row.
  const used = readFileSync(summary, 'utf8')
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((cols) => cols.length >= 5 && /^\d/.test(cols[0]) && cols.at(-1) !== 'total')
    .map((cols) => cols.at(-1)!);
  t.ok(used.length > 30, `${used.length} distinct calls traced`);
  t.same(used.filter((c) => !allowed.has(c)), [], 'no call outside the filter');
});
