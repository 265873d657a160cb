// A client that stops reading is paused, not dropped, and not buffered for
// without bound: it keeps only its cursor, and on draining resumes from
// Postgres, then the ring, and gets every event, in order. Only a stream that
// makes no progress at all for PGFEED_SLOW_CLIENT_TIMEOUT_MS is closed, and
// its client resumes with Last-Event-ID, losing nothing.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { deliveryOrder, emit, emitBulk } from '../helpers/change-log.js';
import { metric, startDaemon } from '../helpers/daemon.js';
import { connectSse, getJson, type SseClient } from '../helpers/sse-client.js';
import { sleep, waitUntil } from '../helpers/wait.js';

const db = await testDatabase(t);

const bulk = (project: string, n: number, padBytes: number) => emitBulk(db.pool, project, n, padBytes);

t.test('a paused client gets all events in order when it resumes; memory stays bounded', async (t) => {
  // A small ring, so the paused client falls out of it and must resume from Postgres.
  const daemon = await startDaemon(t, db.url, { PGFEED_RING_EVENTS: '1024' });
  const slow = await connectSse(`${daemon.base}/v1/events?project=slow&after=now`);
  const steady = await connectSse(`${daemon.base}/v1/events?project=slow&after=now`);
  t.teardown(() => (slow.close(), steady.close()));
  await Promise.all([slow, steady].map((c) => c.waitFor((c) => c.retry !== null)));
  // The same load once with both reading, so that the heap has grown to its
  // working size before the measurement: what RSS gains after that is what
  // the daemon keeps.
  const total = 20_000;
  // Written while the slow client is paused: more than the kernel's socket
  // buffers could take even at their autotuned maximum (tcp_rmem and
  // tcp_wmem allow about 36 MB here), so that what pgfeed hands out is told
  // apart from what a socket holds.
  const backlog = 50_000;
  const backlogBytes = backlog * 2000;
  await bulk('slow', total, 2000);
  await Promise.all([slow, steady].map((c) => c.waitFor((c) => c.seqs.length === total, 30_000, 'the warm-up')));
  slow.pause();
  const rssBefore = await metric(daemon.base, 'process_resident_memory_bytes');
  t.ok(rssBefore > 0, 'RSS is exported');
  const deliveredBefore = await metric(daemon.base, 'pgfeed_events_delivered_total');
  await bulk('slow', backlog, 2000);
  await steady.waitFor((c) => c.seqs.length === total + backlog, 60_000, 'the steady client');
  t.equal(await metric(daemon.base, 'pgfeed_subscribers', { state: 'paused' }), 1, 'the slow client is paused');
  const rssPaused = await metric(daemon.base, 'process_resident_memory_bytes');
  // What pgfeed handed to the sockets while the slow client was paused: the
  // steady client's events, and for the slow one what the kernel's socket
  // buffers took before they pushed back (a few MB: 2,000 to 6,500 of these
  // events here, never near half the backlog). Writing past the backpressure
  // hands it the whole backlog. That is a count, free of noise. RSS also
  // moves with garbage the collector has not reclaimed yet (a fifth to most
  // of the backlog's size on a busy machine), so it only bounds gross growth:
  // writing past the backpressure grew it 1.3 times the backlog.
  const handedOut = (await metric(daemon.base, 'pgfeed_events_delivered_total')) - deliveredBefore;
  t.ok(handedOut - backlog < backlog / 2, `the paused stream was handed only what the socket buffers took (${handedOut - backlog} of the ${backlog} events)`);
  const grewMb = Math.round((rssPaused - rssBefore) / 1e6);
  t.ok(rssPaused - rssBefore < backlogBytes * 1.25, `RSS stayed bounded (grew ${grewMb} MB for ${backlogBytes / 1e6} MB written while the client was paused)`);
  t.ok(slow.seqs.length < total + backlog, `the slow client has only part so far (${slow.seqs.length - total})`);
  const catchupsBefore = await metric(daemon.base, 'pgfeed_db_queries_total', { kind: 'catchup' });
  slow.resume();
  await slow.waitFor((c) => c.seqs.length === total + backlog, 60_000, 'the slow client to catch up');
  t.same(slow.seqs, steady.seqs, 'every event, once, in the same order');
  t.ok((await metric(daemon.base, 'pgfeed_db_queries_total', { kind: 'catchup' })) > catchupsBefore, 'it resumed through Postgres, the ring having moved on');
  // Then from memory: it is live again and gets a new event with the steady client.
  await waitUntil(async () => (await metric(daemon.base, 'pgfeed_subscribers', { state: 'live' })) === 2, 10_000, 'both streams to be live');
  t.equal(await metric(daemon.base, 'pgfeed_subscribers', { state: 'paused' }), 0, 'no longer paused');
  const [next] = await emit(db.pool, 'slow');
  await Promise.all([slow, steady].map((c) => c.waitFor((c) => c.seqs.at(-1) === next, 10_000, 'the live event')));
  t.equal(await metric(daemon.base, 'pgfeed_slow_streams_closed_total'), 0, 'no stream was closed for being slow');
  t.notOk(slow.closed, 'the slow stream is still open');
});

t.test('a stream that makes no progress is closed after the slow-client timeout, not before; its client resumes losslessly', async (t) => {
  // Short, so that the test is quick.
  const TIMEOUT_MS = 3_000;
  const daemon = await startDaemon(t, db.url, { PGFEED_SLOW_CLIENT_TIMEOUT_MS: String(TIMEOUT_MS) });
  const stalled = await connectSse(`${daemon.base}/v1/events?project=stall&after=now`);
  const clients: SseClient[] = [stalled];
  t.teardown(() => clients.forEach((c) => c.close()));
  await stalled.waitFor((c) => c.retry !== null);
  stalled.pause();
  const N = 3000;
  const start = Date.now();
  await bulk('stall', N, 4000);
  const closing = () => daemon.logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('closing a stream that made no progress'));
  await waitUntil(() => closing() !== undefined, 30_000, 'pgfeed to close the stalled stream');
  // Its last progress was a write after the backlog began, so the close comes at least the timeout later.
  const closedAfter = (closing()!.time as number) - start;
  t.ok(closedAfter >= TIMEOUT_MS, `closed ${closedAfter} ms after the backlog began, not before the ${TIMEOUT_MS} ms timeout`);
  t.equal(await metric(daemon.base, 'pgfeed_slow_streams_closed_total'), 1, 'counted as a slow stream closed');

  stalled.resume();
  await stalled.waitFor((c) => c.closed, 15_000, 'the stalled stream to end');
  t.ok(stalled.seqs.length < N, `the stalled client had only part of the backlog (${stalled.seqs.length} of ${N})`);
  const again = await connectSse(`${daemon.base}/v1/events?project=stall`, { 'Last-Event-ID': stalled.lastEventId ?? '0' });
  clients.push(again);
  await again.waitFor((c) => stalled.seqs.length + c.seqs.length >= N, 30_000, 'the rest after resuming');
  t.same([...stalled.seqs, ...again.seqs], await deliveryOrder(db.pool, 'stall'), 'every event exactly once across the close and resume');
});

t.test('a stream pgfeed closes for making no progress gives its place back', async (t) => {
  // A short timeout, and one place only.
  const d = await startDaemon(t, db.url, { PGFEED_SLOW_CLIENT_TIMEOUT_MS: '1000', PGFEED_MAX_STREAMS: '1' });
  const stuck = await connectSse(`${d.base}/v1/events?project=stuck&after=now`);
  t.teardown(() => stuck.close());
  await stuck.waitFor((c) => c.retry !== null);
  stuck.pause();
  // Far more than the socket buffers hold.
  await db.pool.query(`SELECT pgfeed.emit('stuck', 'bulk', jsonb_build_object('i', g, 'pad', repeat('y', 4000))) FROM generate_series(1, 3000) g`);
  await waitUntil(async () => (await metric(d.base, 'pgfeed_slow_streams_closed_total')) >= 1, 20_000, 'the paused stream to be closed for making no progress');
  // The close and the release happen together: no wait needed after the counter moved.
  const ready = await getJson(`${d.base}/readyz`);
  t.equal(ready.body.streams, 0, '/readyz no longer counts it');
  // Not an EventSource's Accept: a refusal would be a 503, not a stream.
  const next = await connectSse(`${d.base}/v1/events?project=stuck&after=now`, { Accept: '*/*' });
  t.teardown(() => next.close());
  t.equal(next.status, 200, 'and a new stream takes its place');
  await emit(db.pool, 'stuck', 'marker');
  await next.waitFor((c) => c.seqs.length === 1, 10_000, 'an event on the new stream');
  t.pass('the new stream streams');
});

t.test('a client that stops reading for longer than uWebSockets.js\'s 10 s write timeout keeps its stream', async (t) => {
  // uWS ends a response 10 s after a write to it pushed back (its
  // HTTP_TIMEOUT_S, checked on 4 s ticks) unless that timer is re-armed
  // (SseSink.keepWaiting). Only PGFEED_SLOW_CLIENT_TIMEOUT_MS (60 s here) may end it.
  const d = await startDaemon(t, db.url, { PGFEED_SLOW_CLIENT_TIMEOUT_MS: '60000' });
  const reader = await connectSse(`${d.base}/v1/events?project=long-pause&after=now`);
  t.teardown(() => reader.close());
  await reader.waitFor((c) => c.retry !== null);
  reader.pause();
  const N = 3000;
  await bulk('long-pause', N, 4000);
  await waitUntil(async () => (await metric(d.base, 'pgfeed_subscribers', { state: 'paused' })) === 1, 15_000, 'the stream to pause');
  // The stimulus, not the assertion: unread for longer than uWS's timeout and its tick.
  await sleep(16_000);
  reader.resume();
  await reader.waitFor((c) => c.seqs.length === N || c.closed, 30_000, 'the backlog, or the end of the stream');
  t.notOk(reader.closed, 'the stream was not ended while its client did not read');
  t.same(reader.seqs, await deliveryOrder(db.pool, 'long-pause'), 'and it got every event on the same response, in order');
  t.equal(await metric(d.base, 'pgfeed_slow_streams_closed_total'), 0, 'pgfeed closed nothing either');
});
