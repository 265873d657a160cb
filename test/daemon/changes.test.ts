// /v1/changes and the operations endpoints, as docs/http.md describes them.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { startDaemon } from '../helpers/daemon.js';
import { connectSse, getJson } from '../helpers/sse-client.js';
import { emit } from '../helpers/change-log.js';
import { waitUntil } from '../helpers/wait.js';

const db = await testDatabase(t);
const daemon = await startDaemon(t, db.url);
const changes = (q: string) => getJson(`${daemon.base}/v1/changes?${q}`);
const seqsOf = (body: { events: { seq: number }[] }) => body.events.map((e) => e.seq);

t.test('next: the cursor you passed, or null, when there are no events', async (t) => {
  for (const q of ['project=empty', 'project=empty&after=0', 'project=empty&after=now']) {
    const r = await changes(q);
    t.equal(r.status, 200);
    t.equal(r.headers.get('content-type'), 'application/json');
    t.same(r.body, { events: [], next: null, has_more: false, degraded: [] }, `${q}: next is null`);
  }
  const [own] = await emit(db.pool, 'empty-after', 'x');
  const r = await changes(`project=empty-after&after=${own}`);
  t.same(r.body, { events: [], next: String(own), has_more: false, degraded: [] }, 'after=<seq>: next is the cursor passed');
});

t.test('pages: limit, has_more, next is the last event', async (t) => {
  const seqs = await emit(db.pool, 'paged', 'tick', 7);
  const p1 = await changes('project=paged&limit=3');
  t.same(seqsOf(p1.body), seqs.slice(0, 3));
  t.equal(p1.body.next, String(seqs[2]), 'next is a string: the last seq');
  t.equal(p1.body.has_more, true, 'cut at the limit');
  const p2 = await changes(`project=paged&after=${p1.body.next}&limit=3`);
  t.same(seqsOf(p2.body), seqs.slice(3, 6));
  const p3 = await changes(`project=paged&after=${p2.body.next}&limit=3`);
  t.same(seqsOf(p3.body), seqs.slice(6));
  t.equal(p3.body.has_more, false);
  const all = await changes('project=paged');
  t.same(seqsOf(all.body), seqs, 'limit defaults to 512');
  t.same(all.body.events[0], { ...all.body.events[0], project: 'paged', type: 'tick', op: null, table: null, data: { i: 0 } }, 'events are the stream JSON');
});

t.test('next is the last event, not the largest seq: seqs are not monotonic', async (t) => {
  const a = await db.pool.connect();
  const b = await db.pool.connect();
  try {
    await a.query('BEGIN');
    await a.query('SELECT pg_current_xact_id()'); // a takes the older xid
    await b.query('BEGIN');
    await b.query('SELECT pg_current_xact_id()');
    const small = Number((await b.query(`SELECT pgfeed.emit('nonmono', 'x', '{}') AS s`)).rows[0].s);
    const large = Number((await a.query(`SELECT pgfeed.emit('nonmono', 'x', '{}') AS s`)).rows[0].s);
    await b.query('COMMIT');
    await a.query('COMMIT');
    t.ok(large > small);
    const page = await changes('project=nonmono');
    t.same(seqsOf(page.body), [large, small], 'delivered in (xid, seq) order');
    t.equal(page.body.next, String(small), 'next is the last event: the smaller seq');
    const sse = await connectSse(`${daemon.base}/v1/events?project=nonmono&after=0`);
    await sse.waitFor((c) => c.seqs.length === 2, 10_000, 'both events');
    t.same(sse.seqs, seqsOf(page.body), 'the stream has the same order');
    sse.close();
    t.same((await changes(`project=nonmono&after=${page.body.next}`)).body.events, [], 'nothing after next');
  } finally {
    a.release();
    b.release();
  }
});

t.test('types filters read from Postgres: exact names only, globs only, both', async (t) => {
  await emit(db.pool, 'typed', 'pr_opened');
  await emit(db.pool, 'typed', 'session_started');
  await emit(db.pool, 'typed', 'prXopened');
  await emit(db.pool, 'typed', 'pr_closed');
  const cases: [string, string[]][] = [
    ['pr_*', ['pr_opened', 'pr_closed']],
    ['pr_*,session_*', ['pr_opened', 'session_started', 'pr_closed']],
    ['session_started', ['session_started']],
    ['prXopened,pr_*', ['pr_opened', 'prXopened', 'pr_closed']],
  ];
  for (const [types, expected] of cases) {
    const r = await changes(`project=typed&types=${types}`);
    t.equal(r.status, 200, `types=${types}: ${JSON.stringify(r.body)}`);
    t.same(r.body.events?.map((e: { type: string }) => e.type), expected, `/v1/changes types=${types}`);
    // A stream from after=0 catches up from Postgres with the same filter.
    const sse = await connectSse(`${daemon.base}/v1/events?project=typed&after=0&types=${types}`);
    await sse.waitFor((c) => c.seqs.length >= expected.length, 10_000, `the replay of types=${types}`);
    t.same(sse.events.filter((e) => e.id).map((e) => e.event), expected, `/v1/events types=${types}`);
    sse.close();
  }
});

t.test('long-poll: answers with the first new events, or empty when wait runs out', async (t) => {
  const [cursor] = await emit(db.pool, 'lp', 'x');
  const waiting = changes(`project=lp&after=${cursor}&wait=30`);
  await waitUntil(async () => (await getJson(`${daemon.base}/readyz`)).body.long_polls === 1, 5_000, 'the long-poll to wait');
  const [next] = await emit(db.pool, 'lp', 'x');
  const r = await waiting;
  t.same(seqsOf(r.body), [next]);
  t.equal(r.body.next, String(next));
  const empty = await changes(`project=lp&after=${next}&wait=1`);
  t.same(empty.body, { events: [], next: String(next), has_more: false, degraded: [] }, 'an empty page keeps the cursor');
  const now = changes('project=lp&after=now&wait=30');
  await waitUntil(async () => (await getJson(`${daemon.base}/readyz`)).body.long_polls === 1, 5_000, 'the long-poll to wait');
  const [third] = await emit(db.pool, 'lp', 'x');
  t.same(seqsOf((await now).body), [third], 'after=now waits for new events');
});

t.test('healthz, readyz, metrics, and other methods', async (t) => {
  t.same((await getJson(`${daemon.base}/healthz`)).body, { status: 'ok' });
  const ready = await getJson(`${daemon.base}/readyz`);
  t.equal(ready.status, 200);
  t.match(ready.body, {
    ready: true,
    closing: false,
    database: { ok: true },
    listen: { connected: true, channel: 'pgfeed' },
    horizon: { held: false, held_ms: 0, stalled: false, blocker: null },
    tail: { head: /^\d+:\d+$/, ring_events: Number, error: null },
    streams: 0,
    long_polls: 0,
  });
  const text = await (await fetch(`${daemon.base}/metrics`)).text();
  for (const name of [
    'pgfeed_subscribers', 'pgfeed_long_polls', 'pgfeed_events_delivered_total', 'pgfeed_requests_rejected_total',
    'pgfeed_slow_streams_closed_total', 'pgfeed_db_queries_total', 'pgfeed_catchup_shared_total', 'pgfeed_catchup_waiting',
    'pgfeed_notify_wakeups_total', 'pgfeed_listen_connected', 'pgfeed_tail_events_total', 'pgfeed_tail_lag_seconds',
    'pgfeed_horizon_age_seconds', 'pgfeed_horizon_blocked', 'pgfeed_ring_events', 'pgfeed_ring_bytes',
    'process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_active_handles_total',
  ]) t.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} is exported`);
  for (const method of ['HEAD', 'POST', 'PUT', 'DELETE']) {
    const r = await fetch(`${daemon.base}/v1/events?project=x`, { method });
    t.equal(r.status, 405, `${method}: 405`);
    t.equal(r.headers.get('allow'), 'GET');
    await r.arrayBuffer();
  }
  // OPTIONS is answered (CORS preflights use it), with what the endpoint allows.
  const options = await fetch(`${daemon.base}/v1/events?project=x`, { method: 'OPTIONS' });
  t.equal(options.status, 204, 'OPTIONS: 204');
  t.equal(options.headers.get('allow'), 'GET, OPTIONS');
});

