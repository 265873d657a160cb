// A client that stops reading is paused, not dropped, and not buffered for
// without bound: it keeps only its cursor, and on draining resumes from the
// ring or Postgres and gets every event, in order.
import t, { type Test } from 'tap';
import { testDatabase } from '../harness/db.js';
import { metric, startDaemon } from '../helpers/daemon.js';
import { connectSse, getJson, type SseClient } from '../helpers/sse-client.js';

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

/** A stream that stops reading, then 3000 events of about 4 KB: far more than the socket buffers hold. */
async function stalledStream(t: Test, base: string, project: string): Promise<SseClient> {
  const c = await connectSse(`${base}/v1/events?project=${project}&after=now`);
  t.teardown(() => c.close());
  await c.waitFor((c) => c.retry !== null);
  c.pause();
  await db.pool.query(`SELECT pgfeed.emit($1, 'bulk', jsonb_build_object('i', g, 'pad', repeat('y', 4000))) FROM generate_series(1, 3000) g`, [project]);
  return c;
}

t.test('a client that reads nothing for longer than the blocked-write limit resumes losslessly', async (t) => {
  const stalled = await stalledStream(t, daemon.base, 'stall');
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
  const expected = (await db.pool.query<{ s: string }>(`SELECT seq::text AS s FROM pgfeed.change_log c WHERE project = 'stall' ORDER BY c.xid, c.seq`)).rows.map((r) => Number(r.s));
  t.same(got, expected, 'every event exactly once across the close and resume');
});

t.test('a stream pgfeed closes for making no progress gives its place back', async (t) => {
  // Below uWS's own 10 s limit, so pgfeed, not uWS, ends the stream; one place only.
  const d = await startDaemon(t, db.url, { PGFEED_SLOW_CLIENT_TIMEOUT_MS: '1000', PGFEED_MAX_STREAMS: '1' });
  await stalledStream(t, d.base, 'stuck');
  const deadline = Date.now() + 20_000;
  while ((await metric(d.base, 'pgfeed_slow_streams_closed_total')) < 1) {
    if (Date.now() > deadline) throw new Error('the paused stream was not closed for making no progress');
    await new Promise((r) => setTimeout(r, 100));
  }
  // The close and the release happen together: no wait needed after the counter moved.
  const ready = await getJson(`${d.base}/readyz`);
  t.equal(ready.body.streams, 0, '/readyz no longer counts it');
  // Not an EventSource's Accept: a refusal would be a 503, not a stream.
  const next = await connectSse(`${d.base}/v1/events?project=stuck&after=now`, { Accept: '*/*' });
  t.teardown(() => next.close());
  t.equal(next.status, 200, 'and a new stream takes its place');
  await db.pool.query(`SELECT pgfeed.emit('stuck', 'marker', '{}')`);
  await next.waitFor((c) => c.seqs.length === 1, 10_000, 'an event on the new stream');
  t.pass('the new stream streams');
});
