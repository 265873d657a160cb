// A client that stops reading is paused, not dropped, and not buffered for
// without bound: it keeps only its cursor, and on draining resumes from the
// ring or Postgres and gets every event, in order.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { metric, startDaemon } from '../helpers/daemon.js';
import { connectSse } from '../helpers/sse-client.js';
import { deliveryOrder } from '../helpers/change-log.js';

const db = await testDatabase(t);
// A small ring, so the paused client falls out of it and must resume from Postgres.
const daemon = await startDaemon(t, db.url, { PGFEED_RING_EVENTS: '1024' });

t.test('a paused client gets all events in order when it resumes; memory stays bounded', async (t) => {
  const slow = await connectSse(`${daemon.base}/v1/events?project=slow&after=now`);
  const steady = await connectSse(`${daemon.base}/v1/events?project=slow&after=now`);
  t.teardown(() => (slow.close(), steady.close()));
  await Promise.all([slow, steady].map((c) => c.waitFor((c) => c.retry !== null)));
  slow.pause();
  const rssBefore = await metric(daemon.base, 'pgfeed_process_resident_memory_bytes');
  // ~20 MB of events: far more than the socket buffers hold.
  const pad = 'x'.repeat(2000);
  for (let i = 0; i < 10; i++) {
    await db.pool.query(`SELECT pgfeed.emit('slow', 'bulk', jsonb_build_object('i', g, 'pad', $1::text)) FROM generate_series(1, 1000) g`, [pad]);
  }
  const total = 10_000;
  await steady.waitFor((c) => c.seqs.length === total, 30_000, 'the steady client');
  t.ok((await metric(daemon.base, 'pgfeed_subscribers', { state: 'paused' })) >= 1, 'the slow client is paused');
  const rssPaused = await metric(daemon.base, 'pgfeed_process_resident_memory_bytes');
  t.ok(rssPaused - rssBefore < 64 * 1024 * 1024, `the daemon did not buffer the backlog (RSS grew ${Math.round((rssPaused - rssBefore) / 1e6)} MB for ~20 MB written)`);
  t.ok(slow.seqs.length < total, `the slow client has only part so far (${slow.seqs.length})`);
  slow.resume();
  await slow.waitFor((c) => c.seqs.length === total, 30_000, 'the slow client to catch up');
  t.same(slow.seqs, steady.seqs, 'every event, once, in the same order');
  t.ok((await metric(daemon.base, 'pgfeed_db_queries_total', { kind: 'catchup' })) >= 1, 'it resumed through Postgres, the ring having moved on');
  await slow.waitFor(() => true);
  t.equal(await metric(daemon.base, 'pgfeed_subscribers', { state: 'paused' }), 0, 'no longer paused');
});

t.test('a client that reads nothing for longer than the blocked-write limit resumes losslessly', async (t) => {
  const stalled = await connectSse(`${daemon.base}/v1/events?project=stall&after=now`);
  t.teardown(() => stalled.close());
  await stalled.waitFor((c) => c.retry !== null);
  stalled.pause();
  const pad = 'y'.repeat(4000);
  await db.pool.query(`SELECT pgfeed.emit('stall', 'bulk', jsonb_build_object('i', g, 'pad', $1::text)) FROM generate_series(1, 3000) g`, [pad]);
  // uWebSockets.js closes a response whose buffered write has not drained for
  // 10 s (a fixed limit of its HTTP layer). The client then resumes.
  await new Promise((r) => setTimeout(r, 13_000));
  stalled.resume();
  await stalled.waitFor((c) => c.closed || c.seqs.length === 3000, 30_000, 'the stream to drain or close');
  const got = [...stalled.seqs];
  if (got.length < 3000) {
    const again = await connectSse(`${daemon.base}/v1/events?project=stall`, { 'Last-Event-ID': stalled.lastEventId ?? '0' });
    t.teardown(() => again.close());
    await again.waitFor((c) => got.length + c.seqs.length >= 3000, 30_000, 'the rest after resuming');
    got.push(...again.seqs);
  }
  const expected = await deliveryOrder(db.pool, 'stall');
  t.same(got, expected, 'every event exactly once across the close and resume');
});
