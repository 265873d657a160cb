// Several replicas on one database, behind a load balancer: clients that land
// on another replica at every reconnect, cuts in the middle of a transaction
// being delivered, and a replica killed mid-stream, while writers commit,
// roll back and commit out of seq order. Every client must see every
// committed event of its project exactly once, in (xid, seq) order, and
// nothing else (design §4, "replica switches").
import t, { type Test } from 'tap';
import { testDatabase } from '../harness/db.js';
import { deliveryOrder, emit, emitBulk, mixedWriters } from '../helpers/change-log.js';
import { startDaemon, type DaemonProcess } from '../helpers/daemon.js';
import { followStream } from '../helpers/event-source.js';
import { mulberry32 } from '../helpers/random.js';
import { followSse } from '../helpers/sse-follower.js';
import { startSwitchProxy, type SwitchProxy } from '../helpers/switch-proxy.js';
import { sleep, waitUntil } from '../helpers/wait.js';

const db = await testDatabase(t, { poolSize: 24 });
// A short retry, so that reconnects come quickly; all three started at once.
const env = { PGFEED_RETRY_MS: '100', PGFEED_HEARTBEAT_MS: '1000' };
const daemons = await Promise.all([0, 1, 2].map(() => startDaemon(t, db.url, env)));

interface Followed {
  readonly name: string;
  readonly seqs: number[];
  readonly connOf: number[];
  readonly proxy: SwitchProxy;
  waitFor(pred: () => boolean, timeoutMs: number, what: string): Promise<void>;
}

/**
 * Two EventSources and two raw SSE followers of `project`, each behind a
 * round-robin proxy of its own, so that each of its reconnects reaches the
 * next replica.
 */
async function clientsOf(t: Test, project: string, replicas: readonly DaemonProcess[]): Promise<Followed[]> {
  const out: Followed[] = [];
  for (const kind of ['eventsource', 'eventsource', 'raw', 'raw'] as const) {
    const proxy = await startSwitchProxy(t, replicas.map((d) => d.port));
    const url = `${proxy.base}/v1/events?project=${project}&after=0`;
    const s = kind === 'eventsource' ? followStream(t, url, ['mixed', 'bulk', 'marker']) : followSse(t, url);
    out.push({ name: `${kind} #${out.length}`, seqs: s.seqs, connOf: s.connOf, proxy, waitFor: (p, ms, what) => s.waitFor(p, ms, what) });
  }
  return out;
}

interface Cutter {
  paused: boolean;
  stop(): Promise<number>;
}

/** Cuts one client's connection at random moments until stopped. */
function cutter(clients: readonly Followed[], rnd: () => number): Cutter {
  let running = true;
  let cuts = 0;
  const c: Cutter = { paused: false, stop: async () => ((running = false), await loop, cuts) };
  const loop = (async () => {
    while (running) {
      await sleep(150 + rnd() * 350);
      if (c.paused) continue;
      clients[Math.floor(rnd() * clients.length)].proxy.dropAll();
      cuts++;
    }
  })();
  return c;
}

/** Writers and a cutter that stop when the test ends, even if it fails first (they would hold the pool, and the process, open). */
function underLoad(t: Test, clients: readonly Followed[], projects: readonly string[], rnd: () => number): { writers: ReturnType<typeof mixedWriters>; cuts: Cutter } {
  const writers = mixedWriters(db.pool, projects, rnd);
  const cuts = cutter(clients, rnd);
  t.teardown(async () => {
    await cuts.stop();
    await writers.stop();
  });
  return { writers, cuts };
}

/** A 300-row transaction (about 360 kB of frames) cut in the middle of its delivery on every client; its seqs. */
async function cutMidTransaction(clients: readonly Followed[], cuts: Cutter, project: string): Promise<number[]> {
  cuts.paused = true;
  await waitUntil(() => clients.every((c) => c.proxy.openTo.length > 0), 10_000, 'every client connected');
  await sleep(300); // the reconnects caught up: the cut lands in the transaction, not in a catch-up
  const before = new Set(await deliveryOrder(db.pool, project));
  let fired = 0;
  for (const c of clients) c.proxy.cutAfter(120_000, () => fired++);
  await emitBulk(db.pool, project, 300, 1000);
  const tx = (await deliveryOrder(db.pool, project)).filter((s) => !before.has(s));
  await waitUntil(() => fired >= clients.length, 20_000, 'every armed cut to fire');
  cuts.paused = false;
  return tx;
}

/** Writes a marker, waits for every client to have it, and judges each record against the table. */
async function judge(t: Test, clients: readonly Followed[], project: string, midTx: readonly number[][]): Promise<void> {
  const [marker] = await emit(db.pool, project, 'marker');
  const expected = await deliveryOrder(db.pool, project);
  for (const c of clients) {
    await c.waitFor(() => c.seqs.includes(marker), 60_000, `${c.name}: the marker`);
    t.same(c.seqs, expected, `${c.name}: every committed event of ${project} exactly once, in (xid, seq) order, nothing else`);
    const upstreams = c.proxy.connections;
    t.ok(upstreams.length >= 3 && upstreams.every((p, i) => i === 0 || p !== upstreams[i - 1]), `${c.name}: ${upstreams.length} connections, each to another replica than the one before`);
    for (const tx of midTx) {
      const conns = new Set(tx.map((s) => c.connOf[c.seqs.indexOf(s)]));
      t.ok(conns.size >= 2, `${c.name}: a ${tx.length}-row transaction came over ${conns.size} connections: it was cut mid-transaction`);
    }
  }
}

/** Stops the writers; a run in which one kind of write never happened proves less than it claims. */
async function stopWriters(t: Test, writers: ReturnType<typeof mixedWriters>): Promise<void> {
  const w = await writers.stop();
  t.ok(w.committed > 0 && w.rolledBack > 0 && w.interleaved > 0, `writers committed ${w.committed}, rolled back ${w.rolledBack}, interleaved ${w.interleaved} pairs`);
}

t.test('two replicas: clients switch at every reconnect, with cuts mid-transaction', async (t) => {
  const rnd = mulberry32(0x2e91);
  const replicas = daemons.slice(0, 2);
  const clients = await clientsOf(t, 'two', replicas);
  const { writers, cuts } = underLoad(t, clients, ['two', 'two-other'], rnd);
  await sleep(1500);
  const midTx = [await cutMidTransaction(clients, cuts, 'two')];
  await sleep(1500);
  midTx.push(await cutMidTransaction(clients, cuts, 'two'));
  await sleep(1000);
  t.ok((await cuts.stop()) > 5, 'connections were cut throughout');
  await stopWriters(t, writers);
  await judge(t, clients, 'two', midTx);
});

t.test('three replicas: switching, a cut mid-transaction, then one replica killed mid-stream', async (t) => {
  const rnd = mulberry32(0x3e91);
  const clients = await clientsOf(t, 'three', daemons);
  const { writers, cuts } = underLoad(t, clients, ['three', 'three-other'], rnd);
  await sleep(2000);
  const midTx = [await cutMidTransaction(clients, cuts, 'three')];
  await sleep(2000);
  t.ok((await cuts.stop()) > 3, 'connections were cut throughout');

  // Kill the replica while it serves a stream, and take it out of the rotation.
  const victim = daemons[2];
  const open = () => clients.filter((c) => c.proxy.openTo.includes(victim.port));
  // Four clients on three replicas may all be on the other two: cut one at a
  // time (its proxy sends each reconnect to the next replica) until one is here.
  let next = 0;
  await waitUntil(() => {
    if (open().length > 0) return true;
    clients[next++ % clients.length].proxy.dropAll();
    return false;
  }, 20_000, 'a client streaming from the third replica', { intervalMs: 500 });
  const on = open();
  const had = on.map((c) => c.seqs.length);
  for (const c of clients) c.proxy.rotation = c.proxy.rotation.filter((p) => p !== victim.port);
  t.equal(await victim.stop('SIGKILL'), null, 'the replica was killed');
  await sleep(1500);
  await stopWriters(t, writers);
  await judge(t, clients, 'three', midTx);
  on.forEach((c, i) => t.ok(c.seqs.length > had[i], `${c.name}, streaming from the killed replica, went on elsewhere`));
});
