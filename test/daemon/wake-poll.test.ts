// PGFEED_WAKE=poll: writers never NOTIFY (pgfeed.settings notify=false) and
// the daemon's wake poll finds their commits. The safety poll is set to a
// minute throughout, longer than any wait here, so whatever arrives was
// found by the wake poll (or by the held poll, while rows wait behind the
// horizon), never by the safety poll.
import pg from 'pg';
import t, { type Test } from 'tap';
import { testDatabase } from '../harness/db.js';
import { deliveryOrder, emit, writersOf } from '../helpers/change-log.js';
import { metric, startDaemon } from '../helpers/daemon.js';
import { connectSse } from '../helpers/sse-client.js';
import { waitUntil } from '../helpers/wait.js';

const db = await testDatabase(t, { poolSize: 12 });
await db.pool.query(`UPDATE pgfeed.settings SET notify = false;
  CREATE TABLE orders (id bigserial PRIMARY KEY, project text NOT NULL, amount int);
  SELECT pgfeed.track('orders', 'project')`);
const daemon = await startDaemon(t, db.url, { PGFEED_WAKE: 'poll', PGFEED_POLL_MS: '60000' });

/** A LISTEN of its own on the writers' channel, recording every payload. */
async function listen(t: Test): Promise<string[]> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  t.teardown(() => c.end());
  const heard: string[] = [];
  c.on('notification', (n) => heard.push(n.payload ?? ''));
  await c.query('LISTEN pgfeed');
  return heard;
}

t.test('events arrive without a NOTIFY: emitted and captured, in order', async (t) => {
  const heard = await listen(t);
  const c = await connectSse(`${daemon.base}/v1/events?project=quiet&after=now`);
  t.teardown(() => c.close());
  await c.waitFor((c) => c.retry !== null);
  const sent = await emit(db.pool, 'quiet', 'e', 10);
  await db.pool.query(`INSERT INTO orders (project, amount) SELECT 'quiet', g FROM generate_series(1, 5) g`);
  const all = await deliveryOrder(db.pool, 'quiet');
  t.equal(all.length, 15);
  t.same(all.slice(0, 10), sent);
  await c.waitFor((c) => c.seqs.length === 15, 10_000, 'the 15 events, long before the safety poll');
  t.same(c.seqs, all, 'in delivery order');
  // The witness: a NOTIFY sent after the writes arrives after any they sent.
  await db.pool.query(`NOTIFY pgfeed, 'marker'`);
  await waitUntil(() => heard.includes('marker'), 10_000, 'the marker NOTIFY');
  t.same(heard, ['marker'], 'the writers sent no NOTIFY');
  t.ok((await metric(daemon.base, 'pgfeed_wake_poll_changes_total')) > 0, 'the wake poll rang');
  t.equal((await (await fetch(`${daemon.base}/readyz`)).json()).wake.mode, 'poll');
});

t.test('out-of-order commits are delivered in (xid, seq) order', async (t) => {
  const live = await connectSse(`${daemon.base}/v1/events?project=mixed&after=now`);
  t.teardown(() => live.close());
  await live.waitFor((c) => c.retry !== null);
  // A transaction that begins first and commits last, with concurrent
  // writers committing around it whenever their transactions end.
  const first = await db.pool.connect();
  t.teardown(() => first.release());
  await first.query('BEGIN');
  const [early] = await emit(first, 'mixed', 'one');
  const w = writersOf(db.pool, 'mixed', 4);
  await waitUntil(async () => (await deliveryOrder(db.pool, 'mixed')).length >= 20, 10_000, 'writes behind the open transaction');
  await first.query('COMMIT');
  const written = await w.stop();
  const order = await deliveryOrder(db.pool, 'mixed');
  t.equal(order.length, written + 1);
  t.equal(order[0], early, 'the transaction that began first comes first, though it committed last');
  await live.waitFor((c) => c.seqs.length === order.length, 15_000, 'every event');
  t.same(live.seqs, order, 'exactly the committed events, in delivery order');
});

t.test('the wake poll reconnects after its connection is killed', async (t) => {
  const backend = async () => (await db.pool.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE application_name = 'pgfeed:wake' AND datname = current_database()`)).rows.map((r) => r.pid);
  await waitUntil(async () => (await backend()).length === 1, 10_000, 'the wake poll connection');
  const [old] = await backend();
  const c = await connectSse(`${daemon.base}/v1/events?project=again&after=now`);
  t.teardown(() => c.close());
  await c.waitFor((c) => c.retry !== null);
  await db.pool.query('SELECT pg_terminate_backend($1)', [old]);
  await waitUntil(async () => {
    const now = await backend();
    return now.length === 1 && now[0] !== old;
  }, 15_000, 'a new wake poll connection');
  await waitUntil(async () => (await metric(daemon.base, 'pgfeed_wake_poll_connected')) === 1, 10_000, 'the wake poll to be up again');
  t.ok(daemon.logs.some((l) => l.msg === 'wake poll failed; reconnecting'), 'the loss was logged');
  const sent = await emit(db.pool, 'again', 'e', 3);
  await c.waitFor((c) => c.seqs.length === 3, 10_000, 'events committed after the reconnect');
  t.same(c.seqs, sent);
});

t.test('under steady writes the tail is woken without probes, and misses nothing', async (t) => {
  const c = await connectSse(`${daemon.base}/v1/events?project=steady&after=now`);
  t.teardown(() => c.close());
  await c.waitFor((c) => c.retry !== null);
  const probes = () => metric(daemon.base, 'pgfeed_db_queries_total', { kind: 'wake' });
  const skipped = () => metric(daemon.base, 'pgfeed_wake_poll_skipped_total');
  const [probes0, skipped0] = [await probes(), await skipped()];
  const w = writersOf(db.pool, 'steady', 4);
  t.teardown(() => w.stop());
  await waitUntil(async () => (await skipped()) - skipped0 >= 50, 15_000, 'intervals that woke the tail without a probe');
  const written = await w.stop();
  const [probes1, skipped1] = [await probes(), await skipped()];
  // Each skipped interval is a probe not sent: under a load that keeps the
  // tail finding rows, most intervals are.
  t.ok(skipped1 - skipped0 > probes1 - probes0, `more intervals skipped the probe (${skipped1 - skipped0}) than sent it (${probes1 - probes0})`);
  const order = await deliveryOrder(db.pool, 'steady');
  t.equal(order.length, written);
  await c.waitFor((c) => c.seqs.length === order.length, 15_000, 'every event');
  t.same(c.seqs, order, 'exactly the committed events, in delivery order');
  // Once the writes stop, a read finds nothing and the probe comes back.
  const idle = await probes();
  await waitUntil(async () => (await probes()) > idle + 20, 10_000, 'probes again once idle (one a second while busy)');
  const sent = await emit(db.pool, 'steady', 'after', 2);
  await c.waitFor((c) => c.seqs.length === order.length + 2, 10_000, 'events written after the load');
  t.same(c.seqs.slice(-2), sent);
});
