// A subscriber whose socket pushes back during catch-up: every event arrives
// once and in order, and a batch cut short by backpressure is finished from
// memory rather than read again. The feed runs in-process on the real test
// database; only the socket is replaced, by a Sink that says "backpressure"
// on every other write and drains on request.
import pg from 'pg';
import t, { type Test } from 'tap';
import { Catchup } from '../../src/feed/catchup.js';
import { controlFrame } from '../../src/feed/frame.js';
import { Hub } from '../../src/feed/hub.js';
import { Subscriber, type SubscriberDeps } from '../../src/feed/subscriber.js';
import { Tail } from '../../src/feed/tail.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { testDatabase } from '../harness/db.js';
import { RecordingSink } from '../helpers/recording-sink.js';
import { deliveryOrder } from '../helpers/change-log.js';
import { assertReleased, trackTimers } from '../helpers/feed-leaks.js';
import { waitUntil } from '../helpers/wait.js';
import { ReadScope } from '../../src/db/row-security.js';

/**
 * The services a subscriber reads from, started on a pool of its own without
 * idle timers (so that every timer left is the feed's), and a tail whose
 * ring is too small to hold the backlog: catch-up reads from Postgres.
 */
async function feedServices(t: Test, url: string, catchupConcurrency: number): Promise<SubscriberDeps> {
  const pool = new pg.Pool({ connectionString: url, max: 5, idleTimeoutMillis: 0 });
  const scope = new ReadScope(pool);
  t.teardown(() => pool.end());
  const metrics = createMetrics();
  const log = createLogger('silent');
  const hub = new Hub();
  const tail = new Tail(scope, hub, metrics, log, { pollMs: 60_000, heldPollMs: 25, ringEvents: 100, ringBytes: 1 << 20 });
  await tail.start();
  t.teardown(() => tail.close());
  return { tail, hub, catchup: new Catchup(scope, catchupConcurrency, metrics), metrics, log };
}

/** A batch read ahead may still be on its way when a stream ends: the database goes away with the test. */
function readsDone(deps: SubscriberDeps): Promise<void> {
  return waitUntil(() => deps.catchup.load.running === 0, 10_000, 'the catch-up reads in flight to finish', { intervalMs: 10 });
}

t.test('catch-up under backpressure: exactly once, in order, each batch read once', async (t) => {
  const db = await testDatabase(t);
  const N = 3000;
  // Each row about 1 KB, so a 512-row batch spans several slabs.
  await db.pool.query(`SELECT pgfeed.emit('bp', 'tick', jsonb_build_object('i', g, 'pad', repeat('x', 900))) FROM generate_series(1, $1) g`, [N]);
  const expected = await deliveryOrder(db.pool, 'bp');

  const timers = trackTimers(t);
  const deps = await feedServices(t, db.url, 4);
  const { tail, hub, metrics } = deps;
  // Every other write pushes back.
  const sink = new RecordingSink((n) => n % 2 === 0);
  // A budget that takes whole 512-row batches of these rows (half of it each).
  const sub = new Subscriber(deps, { slowClientTimeoutMs: 60_000, eventNames: true, catchupBytes: 2 << 20 }, sink, { project: 'bp', types: [] }, { xid: 0, seq: 0 });
  sub.start();
  t.teardown(() => sub.close());

  // Drain whenever the subscriber is paused, until it is live.
  const deadline = Date.now() + 30_000;
  let drains = 0;
  while (sub.state !== 'live' && Date.now() < deadline) {
    if (sub.state === 'paused' && sink.release()) drains++;
    await new Promise((r) => setImmediate(r));
  }
  t.equal(sub.state, 'live', 'caught up');
  t.ok(drains >= 10, `it was paused and resumed many times (${drains})`);
  t.same(sink.seqs, expected, `all ${N} events, once each, in (xid, seq) order`);
  const reads = (await metrics.queries.get()).values.find((v) => v.labels.kind === 'catchup')?.value ?? 0;
  // 3000 rows in batches of 512: 6 reads, and at most one dropped prefetch
  // per batch. Reading again at every pause would take one read per drain.
  t.ok(reads <= 2 * Math.ceil(N / 512) && reads < drains, `catch-up reads: ${reads}, drains: ${drains}`);
  t.ok(sink.writes < N / 10, `frames were joined into ${sink.writes} writes for ${N} events`);

  sub.close();
  await readsDone(deps);
  await tail.close();
  await assertReleased(t, hub, timers);
});

t.test('a control frame follows what a paused stream already queued, and can end the stream', async (t) => {
  const db = await testDatabase(t);
  await db.pool.query(`SELECT pgfeed.emit('sig', 'tick', jsonb_build_object('i', g, 'pad', repeat('x', 900))) FROM generate_series(1, 600) g`);
  const expected = await deliveryOrder(db.pool, 'sig');
  const deps = await feedServices(t, db.url, 2);
  // The first write pushes back: the stream pauses with one slab queued.
  const sink = new RecordingSink((n) => n === 1);
  const sub = new Subscriber(deps, { slowClientTimeoutMs: 60_000, eventNames: true, catchupBytes: 512 * 1024 }, sink, { project: 'sig', types: [] }, { xid: 0, seq: 0 });
  sub.start();
  t.teardown(() => sub.close());
  const deadline = Date.now() + 10_000;
  while (sub.state !== 'paused' && Date.now() < deadline) await new Promise((r) => setImmediate(r));
  t.equal(sub.state, 'paused', 'paused on backpressure');
  const queued = sink.seqs;
  t.ok(queued.length > 0 && queued.length < expected.length, `${queued.length} events queued before the pause`);
  t.same(queued, expected.slice(0, queued.length), 'the queued events are the first in delivery order');

  sub.signal(controlFrame('pgfeed.reset', { earliest: null }), true);
  const text = Buffer.concat(sink.frames).toString();
  t.ok(text.endsWith('event: pgfeed.reset\ndata: {"type":"pgfeed.reset","earliest":null}\n\n'), 'the control frame comes after the queued events');
  t.equal(sub.state, 'closed', 'the stream is closed');
  t.notOk(sink.open, 'and its sink ended');
  // A drain arriving after the end does not bring the stream back (the drain handler decides synchronously).
  sink.release();
  t.equal(sub.state, 'closed', 'still closed after a drain');
  t.same(sink.seqs, queued, 'no event was written after the control frame');
  await readsDone(deps);
});
