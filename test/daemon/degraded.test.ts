// pgfeed.degraded and pgfeed.ok: sent to every open stream once per
// transition (never once per read or per event), told at once to a stream
// that opens while delivery is delayed, in order with a paused stream's
// queued data, and reported by /v1/changes as `degraded`.
import pg from 'pg';
import t, { type Test } from 'tap';
import { testDatabase } from '../harness/db.js';
import { deliveryOrder, emit } from '../helpers/change-log.js';
import { metric, startDaemon } from '../helpers/daemon.js';
import { connectSse, getJson, type SseClient } from '../helpers/sse-client.js';
import { waitUntil } from '../helpers/wait.js';

const db = await testDatabase(t);
const daemon = await startDaemon(t, db.url, { PGFEED_HORIZON_STALL_MS: '1000' });

const controls = (c: SseClient) => c.events.filter((e) => e.event?.startsWith('pgfeed.')).map((e) => e.event);

/** Opens a writing transaction, which holds the horizon until `end` is called. */
async function holdHorizon(t: Test): Promise<{ pid: number; end(): Promise<void> }> {
  const blocker: pg.PoolClient = await db.pool.connect();
  let ended = false;
  const end = async () => {
    if (ended) return;
    ended = true;
    await blocker.query('ROLLBACK');
    blocker.release();
  };
  t.teardown(end);
  await blocker.query(`BEGIN; SET LOCAL application_name = 'holder'; CREATE TEMP TABLE hold (x int) ON COMMIT DROP; INSERT INTO hold VALUES (1)`);
  const pid = (await blocker.query('SELECT pg_backend_pid() AS p')).rows[0].p as number;
  return { pid, end };
}

const stalled = async () => (await getJson(`${daemon.base}/readyz`)).body.degraded.some((d: { reason: string }) => d.reason === 'horizon_stalled');

t.test('a live stream hears degraded once when the horizon stalls, and ok once when it moves', async (t) => {
  const c = await connectSse(`${daemon.base}/v1/events?project=live&after=now`);
  t.teardown(() => c.close());
  await c.waitFor((c) => c.retry !== null);
  const [before] = await emit(db.pool, 'live');
  await c.waitFor((c) => c.seqs.length === 1, 5_000, 'an event before the stall');
  const hold = await holdHorizon(t);
  const held = await emit(db.pool, 'live', 'held', 3);
  await c.waitFor((c) => controls(c).length === 1, 10_000, 'pgfeed.degraded');
  const degraded = c.events.find((e) => e.event === 'pgfeed.degraded')!;
  t.equal(degraded.id, null, 'a control event has no id');
  t.match(degraded.json, {
    type: 'pgfeed.degraded',
    reason: 'horizon_stalled',
    since: String,
    blocker: { pid: hold.pid, application_name: 'holder', xact_age_ms: Number },
  }, 'it names the blocking backend, its application and its transaction age');
  t.ok(Date.now() - Date.parse(degraded.json.since) >= 1000, 'since: when rows began to wait, at least the stall threshold ago');
  // The tail reads every 25 ms while rows wait: more than 40 times between the degraded and the ok below.
  await new Promise((r) => setTimeout(r, 1_000));
  await hold.end();
  await c.waitFor((c) => controls(c).length === 2, 10_000, 'pgfeed.ok');
  t.same(controls(c), ['pgfeed.degraded', 'pgfeed.ok'], 'one of each: nothing repeated while the stall lasted');
  t.same(c.events.find((e) => e.event === 'pgfeed.ok')!.json, { type: 'pgfeed.ok' });
  await c.waitFor((c) => c.seqs.length === 4, 5_000, 'the held events');
  t.same(c.seqs, [before, ...held], 'every event, once, in order: the control events moved no cursor');
  const [after] = await emit(db.pool, 'live');
  await c.waitFor((c) => c.seqs.includes(after), 5_000, 'an event after the ok');
  t.same(controls(c), ['pgfeed.degraded', 'pgfeed.ok'], 'and nothing more');
});

t.test('a stream that opens while delivery is delayed is told at once; /v1/changes reports it', async (t) => {
  const hold = await holdHorizon(t);
  await emit(db.pool, 'late');
  await waitUntil(stalled, 10_000, 'the horizon to stall');
  const c = await connectSse(`${daemon.base}/v1/events?project=late&after=now`);
  t.teardown(() => c.close());
  await c.waitFor((c) => c.events.length === 1, 5_000, 'the first event');
  t.equal(c.events[0].event, 'pgfeed.degraded', 'pgfeed.degraded comes first, right after retry:');
  t.match(c.events[0].json, { reason: 'horizon_stalled', blocker: { pid: hold.pid } });
  const page = await getJson(`${daemon.base}/v1/changes?project=late&after=now`);
  t.equal(page.status, 200);
  t.match(page.body, { events: [], degraded: [{ reason: 'horizon_stalled', since: String, blocker: { pid: hold.pid, application_name: 'holder' } }] }, 'the poll reports the same condition');
  await hold.end();
  await c.waitFor((c) => c.events.some((e) => e.event === 'pgfeed.ok'), 10_000, 'pgfeed.ok');
  t.same((await getJson(`${daemon.base}/v1/changes?project=late&after=now`)).body.degraded, [], 'and an empty list once it has ended');
});

t.test('a paused stream gets the control events after what it had queued, then the rest in order', async (t) => {
  const c = await connectSse(`${daemon.base}/v1/events?project=slow&after=now`);
  t.teardown(() => c.close());
  await c.waitFor((c) => c.retry !== null);
  c.pause();
  // More than the socket buffers take (about 36 MB here at most), so the stream pauses with frames queued.
  for (let i = 0; i < 25; i++) {
    await db.pool.query(`SELECT pgfeed.emit('slow', 'bulk', jsonb_build_object('i', g, 'pad', repeat('x', 2000))) FROM generate_series(1, 1000) g`);
  }
  await waitUntil(async () => (await metric(daemon.base, 'pgfeed_subscribers', { state: 'paused' })) === 1, 30_000, 'the stream to pause');
  const hold = await holdHorizon(t);
  await emit(db.pool, 'slow', 'held', 2);
  await waitUntil(stalled, 10_000, 'the horizon to stall');
  await hold.end();
  await waitUntil(async () => !(await stalled()), 10_000, 'the stall to end');
  t.equal(await metric(daemon.base, 'pgfeed_subscribers', { state: 'paused' }), 1, 'still paused through both transitions');
  c.resume();
  const expected = await deliveryOrder(db.pool, 'slow');
  await c.waitFor((c) => c.seqs.length === expected.length, 60_000, 'every event');
  t.same(c.seqs, expected, 'every event once, in order');
  const at = (name: string) => c.events.findIndex((e) => e.event === name);
  t.same(controls(c), ['pgfeed.degraded', 'pgfeed.ok'], 'both control events, once each');
  const dataBefore = c.events.slice(0, at('pgfeed.degraded')).filter((e) => e.id !== null).length;
  t.ok(dataBefore > 0 && dataBefore < expected.length - 2, `they came after the ${dataBefore} events already queued, before the rest`);
  t.equal(at('pgfeed.ok'), at('pgfeed.degraded') + 1, 'one after the other: nothing was written to the paused stream between them');
  t.ok(c.events.every((e) => e.json !== undefined), 'no frame was cut into another');
});

t.test('LISTEN down while the tail still reads: streams are told, /readyz stays ready', async (t) => {
  const c = await connectSse(`${daemon.base}/v1/events?project=ear&after=now`);
  t.teardown(() => c.close());
  await c.waitFor((c) => c.retry !== null);
  // The listener cannot reconnect while the database refuses new connections;
  // the daemon's open query connections stay, so the tail keeps reading.
  const admin = new URL(db.url);
  admin.pathname = '/postgres';
  const other = new pg.Client({ connectionString: admin.href });
  await other.connect();
  const allow = (on: boolean) => other.query(`ALTER DATABASE "${db.name}" ALLOW_CONNECTIONS ${on}`);
  t.teardown(async () => {
    await allow(true);
    await other.end();
  });
  const writer = await db.pool.connect();
  t.teardown(() => writer.release());
  await allow(false);
  await other.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pgfeed:listen' AND datname = $1`, [db.name]);
  await c.waitFor((c) => controls(c).length === 1, 10_000, 'pgfeed.degraded');
  t.match(c.events.find((e) => e.event === 'pgfeed.degraded')!.json, { reason: 'listen_down', since: String });
  const ready = await getJson(`${daemon.base}/readyz`);
  t.equal(ready.status, 200, 'ready: the tail still polls');
  t.equal(ready.body.listen.connected, false);
  t.match(ready.body.degraded, [{ reason: 'listen_down' }]);
  t.equal(await metric(daemon.base, 'pgfeed_degraded', { reason: 'listen_down' }), 1);
  // Its NOTIFY reaches no one: the safety poll brings it.
  const [late] = await emit(writer, 'ear');
  await c.waitFor((c) => c.seqs.includes(late), 5_000, 'an event written while LISTEN is down');
  t.same(controls(c), ['pgfeed.degraded'], 'still degraded when it came');
  await allow(true);
  await c.waitFor((c) => controls(c).length === 2, 15_000, 'pgfeed.ok once LISTEN is back');
  t.same(controls(c), ['pgfeed.degraded', 'pgfeed.ok']);
  t.equal(await metric(daemon.base, 'pgfeed_degraded', { reason: 'listen_down' }), 0);
});
