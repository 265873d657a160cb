// /v1/events end to end: a spawned daemon, a real Postgres, real SSE frames.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { startDaemon } from '../helpers/daemon.js';
import { connectSse, type SseClient } from '../helpers/sse-client.js';
import { deliveryOrder, emit } from '../helpers/change-log.js';

const db = await testDatabase(t);
await db.pool.query(`CREATE TABLE orders (id serial PRIMARY KEY, tenant text NOT NULL, total int);
  SELECT pgfeed.track('orders', 'tenant')`);
const daemon = await startDaemon(t, db.url, { PGFEED_HEARTBEAT_MS: '1000' });
const url = (q: string) => `${daemon.base}/v1/events?${q}`;
const open: SseClient[] = [];
t.teardown(() => open.forEach((c) => c.close()));
async function sse(q: string, headers: Record<string, string> = {}) {
  const c = await connectSse(url(q), headers);
  open.push(c);
  return c;
}
t.test('a row inserted in the database shows up on the stream', async (t) => {
  const c = await sse('project=acme&after=now');
  t.equal(c.status, 200);
  t.equal(c.headers['content-type'], 'text/event-stream');
  t.equal(c.headers['cache-control'], 'no-cache');
  t.equal(c.headers['x-accel-buffering'], 'no');
  await c.waitFor((c) => c.retry !== null, 5000, 'the retry frame');
  t.ok(c.retry! >= 2000 && c.retry! <= 4000, `retry is jittered around the base (${c.retry})`);
  await db.pool.query(`INSERT INTO orders (tenant, total) VALUES ('acme', 42)`);
  await c.waitFor((c) => c.seqs.length === 1, 10_000, 'the insert');
  const ev = c.events.find((e) => e.id !== null)!;
  t.equal(ev.event, 'orders.insert');
  t.equal(String(ev.json.seq), ev.id, 'the id is the seq');
  t.match(ev.json, { project: 'acme', type: 'orders.insert', op: 'insert', table: 'public.orders', data: { tenant: 'acme', total: 42 } });
  t.match(ev.json.xid, /^\d+$/, 'xid is a decimal string');
  t.match(ev.json.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  await c.waitFor((c) => c.pings >= 1, 5000, 'a heartbeat');
  t.pass('heartbeat comments arrive');
});

t.test('resume: after=0, after=<seq>, Last-Event-ID, after=now, exactly once', async (t) => {
  const seqs = await emit(db.pool, 'resume', 'tick', 20);
  const all = await sse('project=resume&after=0');
  await all.waitFor((c) => c.seqs.length === 20, 10_000, '20 events');
  t.same(all.seqs, seqs, 'after=0 replays retained history in order');

  const fromTenth = await sse(`project=resume&after=${seqs[9]}`);
  await fromTenth.waitFor((c) => c.seqs.length === 10, 10_000, '10 events');
  t.same(fromTenth.seqs, seqs.slice(10), 'after=<seq> resumes strictly after it');

  const header = await sse('project=resume', { 'Last-Event-ID': String(seqs[14]) });
  await header.waitFor((c) => c.seqs.length === 5, 10_000, '5 events');
  t.same(header.seqs, seqs.slice(15), 'Last-Event-ID resumes strictly after it');

  // What a browser's EventSource sends on reconnect: the original URL plus the header.
  const both = await sse('project=resume&after=0', { 'Last-Event-ID': String(seqs[17]) });
  await both.waitFor((c) => c.seqs.length === 2, 10_000, '2 events');
  t.same(both.seqs, seqs.slice(18), 'the header wins over after=0');

  const now = await sse('project=resume&after=now');
  await now.waitFor((c) => c.retry !== null);
  const more = await emit(db.pool, 'resume', 'tick', 3);
  await now.waitFor((c) => c.seqs.length === 3, 10_000, '3 new events');
  t.same(now.seqs, more, 'after=now gets only new events');

  // Exactly once across a reconnect made in the middle of a burst.
  const first = await sse('project=resume&after=0');
  await first.waitFor((c) => c.seqs.length >= 23, 10_000, 'history');
  first.close();
  const burst = emit(db.pool, 'resume', 'tick', 30);
  const second = await sse('project=resume', { 'Last-Event-ID': first.lastEventId! });
  const burstSeqs = await burst;
  await second.waitFor((c) => c.seqs.at(-1) === burstSeqs.at(-1), 10_000, 'the burst');
  t.same([...first.seqs, ...second.seqs], [...seqs, ...more, ...burstSeqs], 'nothing lost, nothing twice');
  for (const c of [all, fromTenth, header, both, now, second]) c.close();
});

t.test('types filter: exact names and prefix globs', async (t) => {
  await db.pool.query(`CREATE TABLE items (id serial, tenant text); SELECT pgfeed.track('items', 'tenant')`);
  const exact = await sse('project=typed&after=now&types=pr_opened');
  const glob = await sse('project=typed&after=now&types=pr_*,items.insert');
  const everything = await sse('project=typed&after=now&types=*');
  await Promise.all([exact, glob, everything].map((c) => c.waitFor((c) => c.retry !== null)));
  await emit(db.pool, 'typed', 'pr_opened');
  await emit(db.pool, 'typed', 'pr_closed');
  await emit(db.pool, 'typed', 'session_started');
  await db.pool.query(`INSERT INTO items (tenant) VALUES ('typed'); UPDATE items SET id = id`);
  // pr_%_ must not match as a LIKE pattern: the glob is a literal prefix.
  await emit(db.pool, 'typed', 'prXopened');
  await everything.waitFor((c) => c.seqs.length === 6, 10_000, 'all six');
  await glob.waitFor((c) => c.events.filter((e) => e.id).length >= 3, 10_000, 'glob matches');
  t.same(exact.events.filter((e) => e.id).map((e) => e.event), ['pr_opened']);
  t.same(glob.events.filter((e) => e.id).map((e) => e.event), ['pr_opened', 'pr_closed', 'items.insert']);
  t.same(everything.events.filter((e) => e.id).map((e) => e.event), ['pr_opened', 'pr_closed', 'session_started', 'items.insert', 'items.update', 'prXopened']);
  // The same filters when catching up from Postgres rather than live.
  const replay = await sse('project=typed&after=0&types=pr_*,items.insert');
  await replay.waitFor((c) => c.seqs.length === 3, 10_000, 'replayed matches');
  t.same(replay.events.filter((e) => e.id).map((e) => e.event), ['pr_opened', 'pr_closed', 'items.insert']);
});

t.test('isolation: a stream never carries another project', async (t) => {
  const projects = ['p0', 'p1', 'p2', 'p3', 'p4'];
  const clients = await Promise.all(projects.map((p) => sse(`project=${p}&after=now`)));
  await Promise.all(clients.map((c) => c.waitFor((c) => c.retry !== null)));
  const sent: Record<string, number[]> = Object.fromEntries(projects.map((p) => [p, []]));
  await Promise.all([0, 1, 2, 3].map(async (w) => {
    const c = await db.pool.connect();
    try {
      for (let i = 0; i < 25; i++) {
        const p = projects[(i * 7 + w * 3) % projects.length];
        await c.query('BEGIN');
        const s = Number((await c.query(`SELECT pgfeed.emit($1, 'x', '{}') AS s`, [p])).rows[0].s);
        await c.query(`INSERT INTO orders (tenant) VALUES ($1)`, [projects[(i + w) % projects.length]]);
        await c.query('COMMIT');
        sent[p].push(s);
      }
    } finally {
      c.release();
    }
  }));
  for (const [i, p] of projects.entries()) {
    const expected = await deliveryOrder(db.pool, p);
    await clients[i].waitFor((c) => c.seqs.length >= expected.length, 10_000, `${p} events`);
    t.same(clients[i].seqs, expected, `${p}: exactly its own events, in (xid, seq) order`);
    t.ok(clients[i].events.every((e) => !e.id || e.json.project === p), `${p}: no foreign project`);
  }
});

t.test('event_names=off: the same events with no event: line, from the database, the ring and live', async (t) => {
  // Live from the start: opened before anything is written.
  const live = await sse('project=unnamed&after=now&event_names=off');
  await live.waitFor((c) => c.retry !== null, 5000, 'the retry frame');
  const before = await emit(db.pool, 'unnamed', 'a.one', 3);
  // Readers of history: unfiltered (shared slabs) and filtered (its own), unnamed and named.
  const [all, filtered, named] = await Promise.all([
    sse('project=unnamed&after=0&event_names=off'),
    sse('project=unnamed&after=0&event_names=off&types=a.*'),
    sse('project=unnamed&after=0'),
  ]);
  await Promise.all([all, filtered, named].map((c) => c.waitFor((c) => c.retry !== null, 5000, 'the retry frame')));
  const after = [...(await emit(db.pool, 'unnamed', 'a.two', 2)), ...(await emit(db.pool, 'unnamed', 'b.other', 1))];
  await all.waitFor((c) => c.seqs.length === 6, 10_000, 'every event, unfiltered');
  await filtered.waitFor((c) => c.seqs.length === 5, 10_000, 'the a.* events');
  await live.waitFor((c) => c.seqs.length === 6, 10_000, 'every event, live');
  await named.waitFor((c) => c.seqs.length === 6, 10_000, 'every event, named');
  t.same(all.seqs, [...before, ...after], 'the same events, in order');
  t.same(all.events.map((e) => e.event), Array(6).fill('message'), 'none named: an EventSource gives each to onmessage');
  t.same(all.events.map((e) => e.json.type), ['a.one', 'a.one', 'a.one', 'a.two', 'a.two', 'b.other'], 'the type stays in the JSON');
  t.same(filtered.seqs, [...before, ...after.slice(0, 2)]);
  t.same(filtered.events.map((e) => e.event), Array(5).fill('message'));
  t.same(live.seqs, [...before, ...after]);
  t.same(live.events.map((e) => e.event), Array(6).fill('message'));
  t.same(named.events.map((e) => e.event), ['a.one', 'a.one', 'a.one', 'a.two', 'a.two', 'b.other'], 'a stream without the parameter names them');
  t.same(named.events.map((e) => e.data), all.events.map((e) => e.data), 'the same data either way');
});
