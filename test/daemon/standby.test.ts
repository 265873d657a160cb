// Catch-up reads on a real hot standby (docs/ordering.md, "Standbys and
// failover"): Debian's PostgreSQL 15 primary and a standby made with
// pg_basebackup -R, streaming over loopback. The daemon keeps LISTEN, the
// tail and cursor lookups on the primary; catch-up reads go to the standby
// while it can bring a stream something, and to the primary otherwise.
import t from 'tap';
import pg from 'pg';
import { standbyName } from '../../src/db/standbys.js';
import { deliveryOrder, emit, emitBulk } from '../helpers/change-log.js';
import { metric, startDaemon } from '../helpers/daemon.js';
import { freePort } from '../helpers/free-port.js';
import { startSwitchProxy } from '../helpers/switch-proxy.js';
import type { Cluster } from '../helpers/pg-cluster.js';
import { connectSse, getJson, type SseClient } from '../helpers/sse-client.js';
import { replicaPair, standbyAvailable } from '../helpers/standby.js';
import { sleep, waitUntil } from '../helpers/wait.js';

if (!standbyAvailable()) {
  t.plan(0, 'needs Debian PostgreSQL 15 (pg_basebackup) in /usr/lib/postgresql/15/bin; .ci/run installs it');
  process.exit(0);
}

const pair = await replicaPair();
t.teardown(() => pair.destroy());
const writer = new pg.Pool({ connectionString: pair.primary.url, max: 8 });
writer.on('error', () => {});
t.teardown(() => writer.end());

// A ring of 512 events (the least there is): a stream that catches up
// rarely finds the ring reaching back to it, so the reads under test run.
const daemon = await startDaemon(t, pair.primary.url, { PGFEED_READ_URL: pair.standby.url, PGFEED_POLL_MS: '200', PGFEED_RING_EVENTS: '512' });
const STANDBY = standbyName(pair.standby.url);

/** Catch-up queries (the per-project read) a server answered, from its own pg_stat_statements. */
async function catchupCalls(c: Cluster): Promise<number> {
  const { rows } = await c.query<{ n: number }>(`SELECT coalesce(sum(calls), 0)::int AS n FROM pg_stat_statements WHERE query LIKE '%c.project = $4%'`);
  return rows[0].n;
}

async function resetCalls(): Promise<void> {
  for (const c of [pair.primary, pair.standby]) await c.query('SELECT pg_stat_statements_reset()');
}

async function standbyState(base = daemon.base): Promise<string> {
  const { body } = await getJson(`${base}/readyz`);
  return body.standbys[0].state;
}

async function follow(project: string, until: (c: SseClient) => boolean, what: string, headers: Record<string, string> = {}): Promise<SseClient> {
  const c = await connectSse(`${daemon.base}/v1/events?project=${project}&after=0`, headers);
  await c.waitFor(until, 60_000, what);
  c.close();
  return c;
}

await waitUntil(async () => (await standbyState()) === 'streaming', 15_000, 'the daemon to trust the standby');

t.test('catch-up reads are served by the standby', async (t) => {
  await emitBulk(writer, 'served', 3000, 50);
  await pair.waitReplayed();
  await resetCalls();
  const before = await metric(daemon.base, 'pgfeed_catchup_reads_total', { server: STANDBY });
  const c = await follow('served', (c) => c.seqs.length >= 3000, '3000 events');
  t.same(c.seqs, await deliveryOrder(writer, 'served'), 'every event once, in delivery order');
  const onStandby = await catchupCalls(pair.standby);
  t.ok(onStandby >= Math.ceil(3000 / 512), `the standby answered the catch-up (${onStandby} reads)`);
  t.ok((await catchupCalls(pair.primary)) < onStandby, 'the primary answered fewer of them');
  t.ok((await metric(daemon.base, 'pgfeed_catchup_reads_total', { server: STANDBY })) - before >= Math.ceil(3000 / 512), 'and the metric counts them by server');
});

t.test('concurrent writers, out-of-order commits and rollbacks: every committed event once, in order, across resumes', async (t) => {
  const project = 'mixed';
  let writing = true;
  let committed = 0;
  let rolledBack = 0;
  const writers = Array.from({ length: 6 }, async (_, w) => {
    const c = await writer.connect();
    try {
      for (let i = 0; writing; i++) {
        await c.query('BEGIN');
        // Take the xid first, then sleep: later xids commit before earlier ones.
        await c.query(`SELECT pgfeed.emit($1, 'w', jsonb_build_object('w', $2::int, 'i', $3::int))`, [project, w, i]);
        await sleep(Math.random() * 30);
        await c.query(`SELECT pgfeed.emit($1, 'w2', '{}')`, [project]);
        if (Math.random() < 0.2) {
          await c.query('ROLLBACK');
          rolledBack++;
        } else {
          await c.query('COMMIT');
          committed++;
        }
      }
    } finally {
      c.release();
    }
  });
  const standbyBefore = await metric(daemon.base, 'pgfeed_catchup_reads_total', { server: STANDBY });
  const seen: number[] = [];
  let last: string | null = null;
  let resumes = 0;
  const until = Date.now() + 4_000;
  while (Date.now() < until) {
    const c = await connectSse(`${daemon.base}/v1/events?project=${project}&after=0`, last ? { 'Last-Event-ID': last } : {});
    await sleep(100 + Math.random() * 200);
    c.close();
    seen.push(...c.seqs);
    if (c.lastEventId) last = c.lastEventId;
    resumes++;
  }
  writing = false;
  await Promise.all(writers);
  const [marker] = await emit(writer, project, 'marker');
  const tailEnd = await connectSse(`${daemon.base}/v1/events?project=${project}&after=0`, last ? { 'Last-Event-ID': last } : {});
  await tailEnd.waitFor((c) => c.seqs.includes(marker), 30_000, 'the marker');
  tailEnd.close();
  seen.push(...tailEnd.seqs);
  t.ok(committed > 20 && rolledBack > 0, `writers committed ${committed} and rolled back ${rolledBack} transactions`);
  t.same(seen, await deliveryOrder(writer, project), `every committed event once, in order, over ${resumes} resumes`);
  t.ok((await metric(daemon.base, 'pgfeed_catchup_reads_total', { server: STANDBY })) > standbyBefore, 'the standby answered some of the reads');
});

t.test('a lagging standby: the stream reads what it lacks from the primary, without spinning, and loses nothing', async (t) => {
  const project = 'lag';
  await emitBulk(writer, project, 2000, 50);
  await pair.waitReplayed();
  // From here the standby applies each commit 3 s late: the next rows are on the primary (and in the tail) only.
  await pair.setApplyDelay(3_000);
  t.teardown(() => pair.setApplyDelay(0));
  await emitBulk(writer, project, 1500, 50);
  const want = await deliveryOrder(writer, project);
  await resetCalls();
  const behind = await metric(daemon.base, 'pgfeed_standby_fallbacks_total', { reason: 'behind' });
  const c = await follow(project, (c) => c.seqs.length >= want.length, `${want.length} events`);
  t.same(c.seqs, want, 'every event once, in delivery order');
  // The standby has nothing after its horizon: asked again and again, it would answer hundreds of empty reads in 3 s.
  const onStandby = await catchupCalls(pair.standby);
  t.ok(onStandby >= 3 && onStandby <= Math.ceil(2000 / 512) + 3, `the standby answered the rows it has, and was not asked again (${onStandby} reads)`);
  t.ok((await catchupCalls(pair.primary)) >= Math.ceil(1500 / 512), 'the primary answered the rest');
  t.ok((await metric(daemon.base, 'pgfeed_standby_fallbacks_total', { reason: 'behind' })) > behind, 'counted as reads the standby was behind for');
  // Polls too: a page from the lagging standby would claim the client is caught up.
  const page = await getJson(`${daemon.base}/v1/changes?project=${project}&after=${want[1999]}&limit=512`);
  t.same(page.body.events.map((e: { seq: string }) => Number(e.seq)), want.slice(2000, 2512), 'a poll past the standby\'s horizon is answered from the primary');
});

t.test('the standby stops mid-catch-up: the primary answers the rest, nothing is lost', async (t) => {
  const project = 'stop';
  const total = 40_000;
  await emitBulk(writer, project, total, 300);
  await pair.waitReplayed();
  const want = await deliveryOrder(writer, project);
  const primaryBefore = await metric(daemon.base, 'pgfeed_catchup_reads_total', { server: 'primary' });
  const standbyBefore = await metric(daemon.base, 'pgfeed_catchup_reads_total', { server: STANDBY });
  const c = await connectSse(`${daemon.base}/v1/events?project=${project}&after=0`);
  // Not reading: the stream pauses on backpressure part-way through.
  c.pause();
  await waitUntil(async () => (await metric(daemon.base, 'pgfeed_subscribers', { state: 'paused' })) === 1, 30_000, 'the stream to pause');
  const readsAtStop = (await metric(daemon.base, 'pgfeed_catchup_reads_total', { server: STANDBY })) - standbyBefore;
  await pair.standby.stop('immediate');
  t.teardown(async () => {
    if (!pair.standby.isRunning) await pair.standby.start();
  });
  c.resume();
  await c.waitFor((c) => c.seqs.length >= total, 60_000, `${total} events`);
  c.close();
  t.same(c.seqs, want, 'every event once, in delivery order');
  t.ok((await metric(daemon.base, 'pgfeed_catchup_reads_total', { server: 'primary' })) > primaryBefore, 'the primary answered the reads after the stop');
  t.ok(readsAtStop > 0 && readsAtStop < Math.floor(total / 512) - 5, `the standby had answered only part of the catch-up (${readsAtStop} reads) when it stopped`);
  await waitUntil(async () => (await standbyState()) === 'unreachable', 10_000, '/readyz to show the standby unreachable');
  const ready = await getJson(`${daemon.base}/readyz`);
  t.equal(ready.status, 200, 'the daemon stays ready on the primary');
  await pair.standby.start();
  await pair.waitStreaming();
  await waitUntil(async () => (await standbyState()) === 'streaming', 15_000, 'the daemon to use the standby again');
});

t.test('a standby unreachable at start: the daemon starts, serves from the primary, and says so', async (t) => {
  const nowhere = `postgres://postgres@127.0.0.1:${await freePort()}/postgres`;
  const other = await startDaemon(t, pair.primary.url, { PGFEED_READ_URL: `${nowhere},${pair.standby.url}` });
  t.teardown(() => other.stop());
  t.ok(other.logs.some((l) => l.msg === 'standby not usable at start; catch-up reads go to the primary until it is' && l.standby === standbyName(nowhere)), 'a warning names it');
  const { status, body } = await getJson(`${other.base}/readyz`);
  t.equal(status, 200, 'ready');
  t.same(body.standbys.map((s: { state: string }) => s.state), ['unreachable', 'streaming'], '/readyz shows each standby\'s state');
  const [seq] = await emit(writer, 'start', 'x');
  await pair.waitReplayed();
  const c = await connectSse(`${other.base}/v1/events?project=start&after=0`);
  await c.waitFor((c) => c.seqs.includes(seq), 15_000, 'the event');
  c.close();
  t.same(c.seqs, [seq], 'served');
});

// Last: the standby leaves recovery for good. A second daemon reaches the
// database through a TCP proxy, as through a virtual IP, and fails over with it.
t.test('failover: a promoted standby is no longer read from, and a daemon that fails over to it follows the new timeline', async (t) => {
  const project = 'promo';
  const proxy = await startSwitchProxy(t, pair.primary.port);
  const follower = await startDaemon(t, `postgres://postgres@127.0.0.1:${proxy.port}/postgres`, { PGFEED_POLL_MS: '200' });
  t.teardown(() => follower.stop());
  await emitBulk(writer, project, 1000, 50);
  await pair.waitReplayed();
  const live = await connectSse(`${follower.base}/v1/events?project=${project}&after=0`);
  t.teardown(() => live.close());
  await live.waitFor((c) => c.seqs.length >= 1000, 30_000, 'the first 1000 events');

  await pair.promote();
  proxy.target = pair.standby.port;
  proxy.dropAll();
  // A write only the promoted server has: a history the old primary never had.
  await pair.standby.query(`SELECT pgfeed.emit('promo', 'divergent', jsonb_build_object('i', g)) FROM generate_series(1, 600) g`);
  const [promotedMarker] = await emit(pair.standby, project, 'marker');
  await emitBulk(writer, project, 700, 50);
  const [marker] = await emit(writer, project, 'marker');
  await waitUntil(async () => (await standbyState()) === 'promoted', 15_000, '/readyz to show the standby promoted');

  const standbyBefore = await metric(daemon.base, 'pgfeed_catchup_reads_total', { server: STANDBY });
  const c = await follow(project, (c) => c.seqs.includes(marker), 'the marker');
  t.same(c.seqs, await deliveryOrder(writer, project), 'the daemon on the old primary: its events, once, in order');
  t.notOk(c.events.some((e) => e.event === 'divergent'), 'none of the promoted server\'s own');
  t.equal(await metric(daemon.base, 'pgfeed_catchup_reads_total', { server: STANDBY }), standbyBefore, 'the promoted server answered no catch-up read');
  t.equal(await metric(daemon.base, 'pgfeed_standby_streaming', { standby: STANDBY }), 0, 'and is not counted as streaming');

  await live.waitFor((c) => c.seqs.includes(promotedMarker), 30_000, 'the new primary\'s marker');
  t.same(live.seqs, await deliveryOrder(pair.standby, project), 'the daemon that failed over: the new timeline\'s events, once, in order, on a stream open across the failover');
  const noticed = follower.logs.find((l) => l.msg === 'Postgres failed over to another timeline; the tail reads again from its last row');
  t.equal((noticed?.now as { timeline?: number } | undefined)?.timeline, 2, 'its tail noticed the new timeline');
});
