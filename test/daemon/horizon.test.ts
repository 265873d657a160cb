// The xmin horizon: an open writing transaction anywhere holds delivery back;
// /readyz names the blocker and reports the stall while staying ready (every
// replica sees the same stall: none is better to route to); the events
// arrive once it ends, with no NOTIFY.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { metric, startDaemon } from '../helpers/daemon.js';
import { connectSse, getJson } from '../helpers/sse-client.js';
import { heldAndFlushed } from '../helpers/held-witness.js';
import { waitUntil } from '../helpers/wait.js';

const db = await testDatabase(t);
// Heartbeats every second, for the witness (helpers/held-witness.ts).
const daemon = await startDaemon(t, db.url, { PGFEED_HORIZON_STALL_MS: '1000', PGFEED_POLL_MS: '60000', PGFEED_HEARTBEAT_MS: '1000' });

t.test('an open writing transaction withholds later commits, and is named', async (t) => {
  const c = await connectSse(`${daemon.base}/v1/events?project=h&after=now`);
  t.teardown(() => c.close());
  await c.waitFor((c) => c.retry !== null);
  const blocker = await db.pool.connect();
  t.teardown(() => blocker.release());
  await blocker.query('BEGIN');
  // Any write gives it an xid; it need not touch pgfeed at all.
  await blocker.query('CREATE TEMP TABLE hold (x int); INSERT INTO hold VALUES (1)');
  const pid = (await blocker.query('SELECT pg_backend_pid() AS p')).rows[0].p;
  const seqs: number[] = [];
  for (let i = 0; i < 3; i++) seqs.push(Number((await db.pool.query(`SELECT pgfeed.emit('h', 'later', '{}') AS s`)).rows[0].s));
  await heldAndFlushed(daemon.base, c);
  t.same(c.seqs, [], 'committed events wait behind the open transaction');
  // The blocker is looked up at most once a second while rows are held.
  await waitUntil(async () => {
    const { horizon } = (await getJson(`${daemon.base}/readyz`)).body;
    return horizon.stalled === true && horizon.blocker?.age_ms >= 1000;
  }, 10_000, 'the horizon to stall, with a blocker over 1 s old');
  const ready = await getJson(`${daemon.base}/readyz`);
  t.equal(ready.status, 200, 'still ready: the daemon can serve, and a stall is the whole database\'s');
  t.equal(ready.body.ready, true);
  t.match(ready.body.degraded, [{ reason: 'horizon_stalled', blocker: { pid, xact_age_ms: Number } }], 'the stall is reported in the detail');
  t.equal(await metric(daemon.base, 'pgfeed_degraded', { reason: 'horizon_stalled' }), 1, 'and in pgfeed_degraded');
  t.equal(ready.body.horizon.held, true);
  t.equal(ready.body.horizon.stalled, true);
  t.equal(ready.body.horizon.blocker.pid, pid, '/readyz names the blocking backend');
  t.ok(ready.body.horizon.blocker.age_ms >= 1000, 'and its age');
  t.match(ready.body.horizon.blocker.query, /pg_backend_pid|INSERT/, 'and its query');
  t.equal(await metric(daemon.base, 'pgfeed_horizon_blocked'), 1, 'the metric says rows are held');
  t.ok((await metric(daemon.base, 'pgfeed_horizon_age_seconds')) >= 1, 'and for how long');
  // Ending it sends no NOTIFY: the held-back poll must notice on its own.
  await blocker.query('ROLLBACK');
  await c.waitFor((c) => c.seqs.length === 3, 5000, 'the held events');
  t.same(c.seqs, seqs);
  await waitUntil(async () => (await getJson(`${daemon.base}/readyz`)).body.horizon.stalled === false, 5_000, 'the stall to end');
  const after = await getJson(`${daemon.base}/readyz`);
  t.equal(after.status, 200);
  t.same(after.body.degraded, [], 'nothing degraded');
  t.equal(await metric(daemon.base, 'pgfeed_degraded', { reason: 'horizon_stalled' }), 0);
  t.equal(after.body.horizon.held, false, 'nothing held');
  t.equal(after.body.horizon.blocker, null, 'no blocker named');
  t.equal(await metric(daemon.base, 'pgfeed_horizon_blocked'), 0, 'the metric is back to 0');
  t.equal(await metric(daemon.base, 'pgfeed_horizon_age_seconds'), 0);
});
