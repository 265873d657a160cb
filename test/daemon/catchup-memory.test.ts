// A stream catching up holds at most PGFEED_CATCHUP_STREAM_BYTES of frames,
// however slowly its client reads: a client that stops reading leaves the
// daemon holding no more than that (its own count, in /ui/api/streams), and
// once it reads again it gets every event, once, in order. Many streams
// replaying from the start at once all finish, in order.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { deliveryOrder, emitBulk } from '../helpers/change-log.js';
import { metric, startDaemon } from '../helpers/daemon.js';
import { connectSse, getJson } from '../helpers/sse-client.js';
import { waitUntil } from '../helpers/wait.js';

const db = await testDatabase(t);
const BUDGET = 128 * 1024;

/** The operator view's count of bytes the project's streams hold. */
async function heldBytes(base: string, project: string): Promise<{ project: number; most: number }> {
  const { body } = await getJson(`${base}/ui/api/streams`);
  const row = (body.streams as { project: string; held_bytes: number }[]).find((s) => s.project === project);
  return { project: row?.held_bytes ?? -1, most: body.catchup.most_held_bytes };
}

t.test('a stream that stops reading while catching up holds at most its budget, and then gets everything in order', async (t) => {
  // A small ring, so the whole replay is read from Postgres.
  const daemon = await startDaemon(t, db.url, { PGFEED_RING_EVENTS: '1024', PGFEED_CATCHUP_STREAM_BYTES: String(BUDGET) });
  // More than the sockets' buffers take from a client that does not read
  // (the sender's 4 MB at most, and the receiver's, which does not grow
  // while nothing is read): the daemon must stop and hold the rest.
  const n = 30_000;
  await emitBulk(db.pool, 'still', n, 2000);
  const expected = await deliveryOrder(db.pool, 'still');
  const client = await connectSse(`${daemon.base}/v1/events?project=still&after=0`);
  client.pause();
  t.teardown(() => client.close());
  await waitUntil(async () => (await metric(daemon.base, 'pgfeed_subscribers', { state: 'paused' })) === 1, 30_000, 'the stream to pause on backpressure');
  // The view and the metric are two requests: the socket may take a little
  // more between them (and the stream then write and pause again), so they
  // are compared on a reading that did not move while the metric was read.
  let held = await heldBytes(daemon.base, 'still');
  let counted = -1;
  await waitUntil(async () => {
    const before = held.project;
    counted = await metric(daemon.base, 'pgfeed_catchup_held_bytes');
    held = await heldBytes(daemon.base, 'still');
    return held.project === before;
  }, 10_000, 'two readings of the held bytes without a write between them');
  t.ok(held.project > 0, `the paused stream holds the rest of a batch (${held.project} bytes)`);
  t.ok(held.project <= BUDGET, `and at most its budget: ${held.project} <= ${BUDGET} bytes`);
  t.equal(held.most, held.project, 'no stream holds more');
  t.equal(counted, held.project, 'the metric counts the same bytes');
  t.ok(client.seqs.length < n, `the client has only part so far (${client.seqs.length} of ${n})`);

  client.resume();
  await client.waitFor((c) => c.seqs.length >= n, 60_000, 'the stream to catch up');
  t.same(client.seqs, expected, `all ${n} events, once each, in delivery order`);
  await waitUntil(async () => (await heldBytes(daemon.base, 'still')).project === 0, 10_000, 'the stream to hold nothing once caught up');
});

t.test('many streams replaying from the start at once all get every event, in order', async (t) => {
  const daemon = await startDaemon(t, db.url, { PGFEED_RING_EVENTS: '1024', PGFEED_CATCHUP_STREAM_BYTES: String(64 * 1024) });
  const n = 5_000;
  await emitBulk(db.pool, 'many', n, 300);
  const expected = await deliveryOrder(db.pool, 'many');
  const clients = await Promise.all(Array.from({ length: 20 }, () => connectSse(`${daemon.base}/v1/events?project=many&after=0`)));
  t.teardown(() => clients.forEach((c) => c.close()));
  // Every other client reads in bursts, so the streams drift apart and stop sharing reads.
  const timer = setInterval(() => clients.forEach((c, i) => (i % 2 ? (Math.random() < 0.5 ? c.pause() : c.resume()) : null)), 5);
  t.teardown(() => clearInterval(timer));
  await Promise.all(clients.map((c) => c.waitFor((c) => c.seqs.length >= n, 60_000, 'a stream to catch up').finally(() => c.resume())));
  clearInterval(timer);
  clients.forEach((c) => c.resume());
  for (const [i, c] of clients.entries()) t.same(c.seqs, expected, `stream ${i}: all ${n} events, once each, in order`);
});
