// Catch-up from Postgres: subscribers at the same position with the same
// filter share one query, and the excess over the cap waits, never fails.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { metric, startDaemon } from '../helpers/daemon.js';
import { connectSse, type SseClient } from '../helpers/sse-client.js';
import { deliveryOrder } from '../helpers/change-log.js';

const db = await testDatabase(t);
await db.pool.query(`SELECT pgfeed.emit('cu', 'e', jsonb_build_object('i', g)) FROM generate_series(1, 2048) g`);
const expected = await deliveryOrder(db.pool, 'cu');

t.test('same position, same filter: one query for many subscribers', async (t) => {
  const daemon = await startDaemon(t, db.url, { PGFEED_CATCHUP_CONCURRENCY: '2' });
  const clients: SseClient[] = await Promise.all(Array.from({ length: 50 }, () => connectSse(`${daemon.base}/v1/events?project=cu&after=0`)));
  t.teardown(() => clients.forEach((c) => c.close()));
  await Promise.all(clients.map((c) => c.waitFor((c) => c.seqs.length === expected.length, 20_000, 'the backlog')));
  for (const c of clients) t.same(c.seqs, expected, 'each got the whole backlog in order');
  const queries = await metric(daemon.base, 'pgfeed_db_queries_total', { kind: 'catchup' });
  const shared = await metric(daemon.base, 'pgfeed_catchup_shared_total');
  // 2048 rows = 4 full batches and one empty read; 50 unshared subscribers would make 250 queries.
  t.ok(shared > 0, `reads were shared (${shared})`);
  t.ok(queries < 125, `catch-up queries for 50 subscribers: ${queries} (250 without sharing)`);
});

t.test('more catch-ups than the cap: the excess waits its turn', async (t) => {
  const daemon = await startDaemon(t, db.url, { PGFEED_CATCHUP_CONCURRENCY: '1' });
  // Distinct cursors, so nothing is shared and every read needs the one slot.
  const clients = await Promise.all(expected.slice(0, 40).map((seq) => connectSse(`${daemon.base}/v1/events?project=cu&after=${seq}`)));
  t.teardown(() => clients.forEach((c) => c.close()));
  await Promise.all(clients.map((c, i) => c.waitFor((c) => c.seqs.length === expected.length - i - 1, 30_000, `subscriber ${i}`)));
  clients.forEach((c, i) => t.same(c.seqs, expected.slice(i + 1), `subscriber ${i} got everything after its cursor`));
  t.ok((await metric(daemon.base, 'pgfeed_catchup_queued_total')) > 0, 'some reads queued for the slot');
  t.equal(await metric(daemon.base, 'pgfeed_catchup_waiting'), 0, 'and none is left waiting');
  t.equal(await metric(daemon.base, 'pgfeed_requests_rejected_total'), 0, 'none was refused');
});
