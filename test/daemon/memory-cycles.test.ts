// 50 cycles of 200 clients connecting and leaving: the daemon's HTTP
// sockets return exactly to their baseline, and its heap after a full collection
// does not grow with the cycles (a leak of per-stream state would: 10,000
// streams in all). RSS is printed, not asserted: the allocator keeps pages
// it has used, which is growth that settles, not a leak.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { emit } from '../helpers/change-log.js';
import { startDaemon } from '../helpers/daemon.js';
import { connectSse, getJson, type SseClient } from '../helpers/sse-client.js';
import { waitUntil } from '../helpers/wait.js';

const CYCLES = 50;
const CLIENTS = 200;
const probe = fileURLToPath(new URL('../helpers/gc-probe.mjs', import.meta.url));
const db = await testDatabase(t);
const d = await startDaemon(t, db.url, { NODE_OPTIONS: `--expose-gc --import ${probe}` });
const pid = d.proc.pid!;
const fds = () => readdirSync(`/proc/${pid}/fd`).length;
/**
 * The daemon's sockets on its HTTP port (the listening one included): its
 * fds that /proc/net/tcp shows with that local port. The query pool opens
 * and closes its connections to Postgres as load comes and goes, so the
 * fd total moves by those; the HTTP sockets must come back exactly.
 */
function httpSockets(): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      // closed while we read
    }
  }
  const port = d.port.toString(16).toUpperCase().padStart(4, '0');
  let n = 0;
  for (const table of ['tcp', 'tcp6']) {
    for (const line of readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[1].endsWith(`:${port}`) && inodes.has(f[9])) n++;
    }
  }
  return n;
}
const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const streams = async () => (await getJson(`${d.base}/readyz`)).body.streams as number;

/** A full collection in the daemon, and its heap after it, in MB. */
async function heapAfterGc(): Promise<number> {
  const seen = d.logs.length;
  d.proc.kill('SIGUSR2');
  await waitUntil(() => d.logs.slice(seen).some((l) => l.msg === 'gc-probe'), 10_000, 'the gc probe');
  return (d.logs.slice(seen).find((l) => l.msg === 'gc-probe')!.heapUsed as number) / 2 ** 20;
}

async function cycle(n: number): Promise<void> {
  // Half catch up from history, half follow live: both paths allocate per stream.
  const clients: SseClient[] = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => connectSse(`${d.base}/v1/events?project=mem&after=${i % 2 ? 'now' : '0'}`)));
  await Promise.all(clients.map((c) => c.waitFor((c) => c.retry !== null, 10_000, 'the retry frame')));
  await waitUntil(async () => (await streams()) === CLIENTS, 10_000, `cycle ${n}: ${CLIENTS} streams open`);
  clients.forEach((c) => c.close());
  await waitUntil(async () => (await streams()) === 0, 10_000, `cycle ${n}: every stream released`);
}

t.test(`${CYCLES} cycles of ${CLIENTS} clients`, async (t) => {
  await emit(db.pool, 'mem', 'tick', 50);
  // Warm-up: the first cycles fill pools, caches and code that are there to stay.
  for (let i = 0; i < 3; i++) await cycle(-i);
  await waitUntil(() => httpSockets() === 1, 10_000, 'only the listening socket');
  const base = { http: httpSockets(), fds: fds(), rss: rssMb(), heap: await heapAfterGc() };
  const rows = [`cycle 0: HTTP sockets ${base.http}, fds ${base.fds}, RSS ${base.rss.toFixed(1)} MB, heap after GC ${base.heap.toFixed(2)} MB`];
  let heap = base.heap;
  for (let n = 1; n <= CYCLES; n++) {
    await cycle(n);
    if (n % 10 === 0) {
      // The clients' sockets close asynchronously on the daemon's side: wait for them, bounded.
      await waitUntil(() => httpSockets() === base.http, 10_000, `cycle ${n}: the HTTP sockets back at ${base.http} (now ${httpSockets()})`);
      heap = await heapAfterGc();
      rows.push(`cycle ${n}: HTTP sockets ${httpSockets()}, fds ${fds()}, RSS ${rssMb().toFixed(1)} MB, heap after GC ${heap.toFixed(2)} MB`);
    }
  }
  for (const r of rows) t.comment(r);
  t.equal(httpSockets(), base.http, `HTTP sockets back at the baseline (${base.http}) after ${CYCLES * CLIENTS} streams`);
  t.ok(fds() <= base.fds + 8, `fds ${base.fds} -> ${fds()}: at most the query pool's 8 connections more`);
  // 10,000 streams: a leak of even 200 bytes each would be 2 MB.
  t.ok(heap - base.heap < 2, `heap after a full GC grew ${(heap - base.heap).toFixed(2)} MB over ${CYCLES} cycles (bound 2 MB)`);
  t.comment(`RSS ${base.rss.toFixed(1)} -> ${rssMb().toFixed(1)} MB`);
  const [seq] = await emit(db.pool, 'mem');
  const after = await connectSse(`${d.base}/v1/events?project=mem&after=${seq}`);
  t.teardown(() => after.close());
  await after.waitFor((c) => c.retry !== null, 5_000, 'the retry frame');
  const [next] = await emit(db.pool, 'mem');
  await after.waitFor((c) => c.seqs.includes(next), 10_000, 'a live event');
  t.pass('and the daemon still streams');
});
