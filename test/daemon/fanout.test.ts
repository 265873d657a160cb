// Database load does not grow with subscribers: 200 live streams on one
// project cost the same tail queries as 1, and no per-subscriber queries.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { metric, startDaemon } from '../helpers/daemon.js';
import { connectSse, type SseClient } from '../helpers/sse-client.js';
import { waitUntil } from '../helpers/wait.js';

const db = await testDatabase(t);
// No safety-poll wake-ups during the measurement: only NOTIFYs wake the tail.
const daemon = await startDaemon(t, db.url, { PGFEED_POLL_MS: '60000' });
const EVENTS = 20;

async function measure(n: number): Promise<{ tail: number; catchup: number; lookup: number }> {
  const clients: SseClient[] = [];
  for (let i = 0; i < n; i++) clients.push(await connectSse(`${daemon.base}/v1/events?project=fan&after=now`));
  await Promise.all(clients.map((c) => c.waitFor((c) => c.retry !== null)));
  // Live means their start-up reads are done: none of them can land in the measurement.
  await waitUntil(async () => (await metric(daemon.base, 'pgfeed_subscribers', { state: 'live' })) === n, 10_000, `${n} live subscribers`);
  const q = async () => ({
    tail: await metric(daemon.base, 'pgfeed_db_queries_total', { kind: 'tail' }),
    catchup: await metric(daemon.base, 'pgfeed_db_queries_total', { kind: 'catchup' }),
    lookup: await metric(daemon.base, 'pgfeed_db_queries_total', { kind: 'lookup' }),
  });
  const before = await q();
  const start = clients[0].seqs.length;
  for (let i = 0; i < EVENTS; i++) {
    await db.pool.query(`SELECT pgfeed.emit('fan', 'e', '{}')`);
    // One commit at a time, each delivered everywhere before the next.
    await Promise.all(clients.map((c) => c.waitFor((c) => c.seqs.length === start + i + 1, 10_000, `event ${i}`)));
  }
  const after = await q();
  t.ok(clients.every((c) => String(c.seqs) === String(clients[0].seqs)), `${n} subscribers got identical streams`);
  clients.forEach((c) => c.close());
  await waitUntil(async () => (await metric(daemon.base, 'pgfeed_subscribers')) === 0, 10_000, 'the streams to close');
  return { tail: after.tail - before.tail, catchup: after.catchup - before.catchup, lookup: after.lookup - before.lookup };
}

t.test('200 live subscribers cost the same tail queries as 1', async (t) => {
  const one = await measure(1);
  const many = await measure(200);
  t.equal(one.catchup, 0, 'no catch-up queries for a live subscriber');
  t.equal(many.catchup, 0, 'none for 200 either');
  t.equal(many.tail, one.tail, `tail queries for ${EVENTS} commits: ${one.tail} with 1 subscriber, ${many.tail} with 200`);
  t.ok(one.tail <= EVENTS * 2, 'about one tail read per commit');
});
