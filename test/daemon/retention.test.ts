// Retention never skips an event silently. A stream whose project lost
// events it had not delivered yet (paused, catching up, or live behind a
// tail that retention overtook) gets pgfeed.reset and ends; a page carries
// `reset`; a pruned cursor is 410. Each case is checked against the order
// the log had before pruning: what a client got is exactly a prefix of it.
import t, { type Test } from 'tap';
import { testDatabase } from '../harness/db.js';
import { deliveryOrder, emit, emitBulk, pruneToLast, writersOf } from '../helpers/change-log.js';
import { metric, startDaemon } from '../helpers/daemon.js';
import { connectSse, getJson, type SseClient } from '../helpers/sse-client.js';
import { waitUntil } from '../helpers/wait.js';

const db = await testDatabase(t);

const writers = (project: string, n?: number) => writersOf(db.pool, project, n);

function resetOf(c: SseClient) {
  return c.events.filter((e) => e.event === 'pgfeed.reset');
}

/** The stream delivered a prefix of `order`, then pgfeed.reset naming the project's first retained event, then ended. */
async function checkReset(t: Test, c: SseClient, order: number[], project: string): Promise<void> {
  await c.waitFor((c) => c.closed, 60_000, 'the stream to end');
  t.ok(c.ended, 'the stream ended cleanly');
  t.same(c.seqs, order.slice(0, c.seqs.length), `what it delivered (${c.seqs.length} events) is a prefix of the delivery order: nothing was skipped`);
  t.ok(c.seqs.length < order.length, 'it did not get everything');
  const resets = resetOf(c);
  t.equal(resets.length, 1, 'one pgfeed.reset');
  t.equal(c.events.at(-1)?.event, 'pgfeed.reset', 'the reset is the last frame');
  t.equal(resets[0].id, null, 'it has no id: the cursor stays on the last event delivered');
  // Nothing has pruned since the reset: its first retained event is still the first.
  t.equal(resets[0].json.earliest, String((await deliveryOrder(db.pool, project))[0]), 'earliest is the first retained event');
}



t.test('a paused stream that retention passes is reset once it drains, with writers writing all along', async (t) => {
  // Written before the daemon starts: never in its ring, so the stream must read Postgres.
  await emitBulk(db.pool, 'paused', 40_000, 2000);
  const order = await deliveryOrder(db.pool, 'paused');
  const daemon = await startDaemon(t, db.url, { PGFEED_RING_EVENTS: '1024' });
  const c = await connectSse(`${daemon.base}/v1/events?project=paused&after=0`);
  t.teardown(() => c.close());
  c.pause();
  await waitUntil(async () => (await metric(daemon.base, 'pgfeed_subscribers', { state: 'paused' })) === 1, 30_000, 'the stream to pause');
  const w = writers('paused');
  const removed = await pruneToLast(db.pool, 100);
  t.ok(removed > 39_000, `pruned ${removed} rows under the paused stream`);
  c.resume();
  await checkReset(t, c, order, 'paused');
  t.ok((await w.stop()) > 0, 'writers wrote while it was pruned');
  t.equal(await metric(daemon.base, 'pgfeed_streams_reset_total'), 1);
  // Resuming from where it stopped is refused, never silently moved on.
  const again = await getJson(`${daemon.base}/v1/events?project=paused`, { 'Last-Event-ID': String(c.seqs.at(-1)) });
  t.equal(again.status, 410);
  t.equal(again.body.error.code, 'cursor_expired');
});

/**
 * Holds the stream's (or page's) next read back on a lock of pgfeed.pruned,
 * which every project read takes and the cursor lookup does not; prunes in
 * the same transaction while it waits, and commits: the read then runs after
 * the rows after its position are gone, and must notice.
 */
async function pruneUnderWaitingRead(keepRows: number, start: () => Promise<void>): Promise<number> {
  return db.withClient(async (c) => {
    await c.query('BEGIN');
    await c.query('LOCK TABLE pgfeed.pruned IN ACCESS EXCLUSIVE MODE');
    await start();
    await waitUntil(
      async () => (await db.pool.query(`SELECT 1 FROM pg_locks WHERE relation = 'pgfeed.pruned'::regclass AND NOT granted`)).rowCount! > 0,
      30_000,
      'the read to wait on the lock',
    );
    await c.query('UPDATE pgfeed.retention SET max_rows = $1', [keepRows]);
    let removed = 0;
    for (let n = -1; n !== 0; removed += n) n = Number((await c.query('SELECT pgfeed.prune(100000) AS n')).rows[0].n);
    await c.query('COMMIT');
    return removed;
  });
}

t.test('a catching-up stream whose next read runs after the rows after its position were pruned is reset', async (t) => {
  await db.pool.query('UPDATE pgfeed.retention SET max_rows = NULL');
  await emitBulk(db.pool, 'catchup', 3000, 10);
  const order = await deliveryOrder(db.pool, 'catchup');
  const daemon = await startDaemon(t, db.url);
  // Resuming from its 10th event: the stream's first read is a catch-up read from Postgres.
  let c: SseClient | undefined;
  const w = writers('catchup');
  const removed = await pruneUnderWaitingRead(50, async () => {
    c = await connectSse(`${daemon.base}/v1/events?project=catchup`, { 'Last-Event-ID': String(order[9]) });
  });
  t.teardown(() => c!.close());
  t.ok(removed >= 2950, `pruned ${removed} rows while the read waited`);
  await checkReset(t, c!, order, 'catchup');
  t.same(c!.seqs, [], 'nothing after the cursor was delivered: all of it was gone');
  await w.stop();
});

t.test('a page whose read runs after the rows after its cursor were pruned says reset', async (t) => {
  await db.pool.query('UPDATE pgfeed.retention SET max_rows = NULL');
  await emitBulk(db.pool, 'page', 500, 10);
  const order = await deliveryOrder(db.pool, 'page');
  const daemon = await startDaemon(t, db.url);
  let page: Promise<{ status: number; body: any }> | undefined;
  await pruneUnderWaitingRead(20, async () => {
    page = getJson(`${daemon.base}/v1/changes?project=page&after=${order[0]}`);
  });
  const { status, body } = await page!;
  t.equal(status, 200);
  t.same(body.events, [], 'no events from after the gap');
  t.equal(body.next, null);
  t.equal(body.has_more, false);
  const retained = await deliveryOrder(db.pool, 'page');
  t.same(body.reset, { earliest: String(retained[0]) }, 'reset names the first retained event');
  const again = await getJson(`${daemon.base}/v1/changes?project=page&after=${order[0]}`);
  t.equal(again.status, 410, 'the same cursor asked again is expired');
  t.equal(again.body.error.earliest, String(retained[0]));
});

t.test('retention that overtakes the tail resets the live streams of projects that lost events, and only those', async (t) => {
  await db.pool.query('UPDATE pgfeed.retention SET max_rows = NULL');
  // Without NOTIFY, with a wake poll and a safety poll of a minute each, the
  // tail reads only when woken (here: by its listener reconnecting), so rows
  // can be pruned before it reads them.
  await db.pool.query('UPDATE pgfeed.settings SET notify = false');
  t.teardown(() => db.pool.query('UPDATE pgfeed.settings SET notify = true'));
  const daemon = await startDaemon(t, db.url, { PGFEED_WAKE: 'poll', PGFEED_WAKE_POLL_MS: '60000', PGFEED_POLL_MS: '60000' });
  const wakeTail = () => db.pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pgfeed:listen' AND datname = current_database()`);
  const lost = await connectSse(`${daemon.base}/v1/events?project=gap&after=now`);
  const spared = await connectSse(`${daemon.base}/v1/events?project=spared&after=now`);
  t.teardown(() => (lost.close(), spared.close()));
  await waitUntil(async () => (await metric(daemon.base, 'pgfeed_subscribers', { state: 'live' })) === 2, 10_000, 'both streams live');
  await emitBulk(db.pool, 'gap', 300, 10);
  const order = await deliveryOrder(db.pool, 'gap');
  const w = writers('gap', 2);
  await pruneToLast(db.pool, 20);
  await w.stop();
  t.equal(await metric(daemon.base, 'pgfeed_tail_events_total'), 0, 'the tail had read none of it');
  await wakeTail();
  await checkReset(t, lost, order, 'gap');
  t.equal(await metric(daemon.base, 'pgfeed_tail_pruned_gaps_total'), 1, 'the tail saw the gap');
  // A later event of the other project is the marker: its stream stayed open and got it.
  const marker = await emit(db.pool, 'spared', 'marker', 1);
  await wakeTail();
  await spared.waitFor((c) => c.seqs.includes(marker[0]), 30_000, 'the marker');
  t.same(spared.seqs, marker, 'the other project\'s stream got its event');
  t.same(resetOf(spared), [], 'and no reset: its project lost nothing');
});

t.test('a daemon configured with retention writes the rules, prunes, and refuses pruned cursors with 410', async (t) => {
  await db.pool.query('UPDATE pgfeed.retention SET max_rows = NULL, max_age = NULL');
  await db.pool.query('DELETE FROM pgfeed.change_log');
  const seqs = await emit(db.pool, 'cfg', 'e', 30);
  const daemon = await startDaemon(t, db.url, { PGFEED_RETENTION_ROWS: '10', PGFEED_PRUNE_INTERVAL_MS: '100' });
  t.same((await db.pool.query('SELECT max_rows::int AS r, max_age FROM pgfeed.retention')).rows[0], { r: 10, max_age: null }, 'the rules are in pgfeed.retention');
  await waitUntil(async () => (await deliveryOrder(db.pool, 'cfg')).length === 10, 30_000, 'the daemon to prune');
  t.equal(await metric(daemon.base, 'pgfeed_pruned_rows_total'), 20);
  const r = await getJson(`${daemon.base}/v1/events?project=cfg&after=${seqs[5]}`);
  t.equal(r.status, 410);
  t.same(r.body.error.earliest, String(seqs[20]), 'earliest is the first retained event');
  const page = await getJson(`${daemon.base}/v1/changes?project=cfg&after=0`);
  t.same(page.body.events.map((e: { seq: number }) => e.seq), seqs.slice(20), 'after=0 starts at the start of retained history, without a reset');
  t.notOk('reset' in page.body);
});
