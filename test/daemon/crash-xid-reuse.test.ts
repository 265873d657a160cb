// After a crash, Postgres hands out again the xids of transactions whose
// commit records never reached the WAL files. This test forces exactly that:
// it burns xids in asynchronous commits, lets the daemon's tail read at the
// horizon above them, crashes Postgres (immediate mode) before the WAL writer
// writes those commits out, and then commits a row under a reissued xid, below
// the horizon the tail had reached. The row must still be delivered, once.
// See docs/ordering.md, "Crash restarts of Postgres".
import t from 'tap';
import pg from 'pg';
import { Catchup } from '../../src/feed/catchup.js';
import { Hub } from '../../src/feed/hub.js';
import { Subscriber } from '../../src/feed/subscriber.js';
import { Tail } from '../../src/feed/tail.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { Cluster } from '../helpers/pg-cluster.js';
import { RecordingSink } from '../helpers/recording-sink.js';
import { startDaemon } from '../helpers/daemon.js';
import { connectSse, getJson } from '../helpers/sse-client.js';
import { deliveryOrder } from '../helpers/change-log.js';
import { assertReleased, trackTimers } from '../helpers/feed-leaks.js';
import { waitUntil } from '../helpers/wait.js';
import { ReadScope } from '../../src/db/row-security.js';

const PROJECT = 'crash';
/** How many xids to burn, and so how far the horizon moves past the last durable one. */
const BURN = 50;

const cluster = await Cluster.create({
  settings: {
    // An asynchronous commit record stays in the WAL buffers (shared memory,
    // lost in a crash) until something writes it out. Leave that to the WAL
    // writer alone, and make it as lazy as it gets: one round every 10 s.
    wal_writer_delay: '10s',
    // 0 would wake the WAL writer at every asynchronous commit.
    wal_writer_flush_after: '1GB',
    // An ANALYZE commits synchronously, which writes out all WAL before it;
    // so does a checkpoint.
    autovacuum: 'off',
    checkpoint_timeout: '1h',
  },
});
t.teardown(() => cluster.destroy());

const daemon = await startDaemon(t, cluster.url, { PGFEED_POLL_MS: '100' });

async function withClient<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await cluster.connect('pgfeed-test:crash');
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

/** Emits one event in a transaction that commits durably. */
function commitRow(type: string, project = PROJECT): Promise<{ seq: number; xid: number }> {
  return withClient(async (c) => {
    await c.query('BEGIN');
    await c.query('SET LOCAL synchronous_commit = on');
    const { rows } = await c.query<{ seq: string; xid: string }>(`SELECT pgfeed.emit($1, $2, '{}')::text AS seq, pg_current_xact_id()::text AS xid`, [project, type]);
    await c.query('COMMIT');
    return { seq: Number(rows[0].seq), xid: Number(rows[0].xid) };
  });
}

/** Commits `n` transactions that each take an xid and write nothing but
 *  their (asynchronous) commit record. Returns the largest xid taken. */
async function burnXids(c: pg.Client, n: number): Promise<number> {
  let max = 0;
  for (let i = 0; i < n; i++) {
    await c.query('BEGIN');
    await c.query('SET LOCAL synchronous_commit = off');
    const { rows } = await c.query<{ xid: string }>('SELECT pg_current_xact_id()::text AS xid');
    await c.query('COMMIT');
    max = Math.max(max, Number(rows[0].xid));
  }
  return max;
}

/** Where WAL has been written out to (the server's write position). */
async function walWritten(c: pg.Client): Promise<string> {
  return (await c.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0].lsn;
}

async function lsnLessOrEqual(c: pg.Client, a: string, b: string): Promise<boolean> {
  return (await c.query<{ le: boolean }>('SELECT $1::pg_lsn <= $2::pg_lsn AS le', [a, b])).rows[0].le;
}

/** Returns just after a WAL writer round, so that the next one is about
 *  wal_writer_delay away: an asynchronous commit is left for it, and the
 *  write position is watched until it moves. */
async function afterWalWriterRound(c: pg.Client): Promise<void> {
  const before = await walWritten(c);
  await burnXids(c, 1);
  await waitUntil(async () => !(await lsnLessOrEqual(c, await walWritten(c), before)), 15_000, 'the WAL writer to write something out', { intervalMs: 20 });
}

/** Throws unless WAL is still unwritten from `insertBefore` on: the burnt commits must be lost in the crash. */
async function assertUnwritten(c: pg.Client, insertBefore: string): Promise<void> {
  const written = await walWritten(c);
  if (!(await lsnLessOrEqual(c, written, insertBefore))) {
    throw new Error(
      `WAL was written out past the burnt commits before the crash (write position ${written}, burning started at ${insertBefore}): ` +
        'Postgres will not reissue their xids, so this test cannot force xid reuse. ' +
        'Something other than the WAL writer flushed WAL (a synchronous commit, a checkpoint, full WAL buffers), or the WAL writer ran early.',
    );
  }
}

/** Crashes Postgres and proves that xids up to `maxBurnt` are handed out again. */
async function crashAndProveReuse(t: { pass(message: string): void }, maxBurnt: number, horizon: number): Promise<void> {
  await cluster.restart('immediate');
  const reissued = await withClient(async (c) => {
    await c.query('BEGIN');
    const xid = Number((await c.query<{ xid: string }>('SELECT pg_current_xact_id()::text AS xid')).rows[0].xid);
    await c.query('COMMIT');
    return xid;
  });
  if (!(reissued <= maxBurnt)) {
    throw new Error(
      `no xid reuse: after the crash a new transaction got xid ${reissued}, but the burnt ones went up to ${maxBurnt}. ` +
        'Postgres made the asynchronous commits durable before the crash, so this test proved nothing; ' +
        'check the WAL writer settings in its Cluster.create call.',
    );
  }
  t.pass(`after the crash, xid ${reissued} is handed out again (burnt up to ${maxBurnt}, horizon was ${horizon})`);
}

async function tailHead(): Promise<{ xid: number; seq: number }> {
  const { body } = await getJson(`${daemon.base}/readyz`);
  const [xid, seq] = String(body.tail.head).split(':').map(Number);
  return { xid, seq };
}

t.test('a row committed under a reissued xid after a crash is delivered', async (t) => {
  const live = await connectSse(`${daemon.base}/v1/events?project=${PROJECT}&after=0`);
  t.teardown(() => live.close());
  t.equal(live.status, 200);

  const r1 = await commitRow('r1');
  await live.waitFor((c) => c.seqs.length === 1, 10_000, 'r1');
  t.same(live.seqs, [r1.seq], 'r1 is delivered');

  // Burn xids whose commits stay in the WAL buffers, and let the tail read at
  // the horizon above them: its head is then a bare horizon, past any row.
  const { maxBurnt, horizon } = await withClient(async (c) => {
    await afterWalWriterRound(c);
    const insertBefore = (await c.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0].lsn;
    const maxBurnt = await burnXids(c, BURN);
    const horizon = Number((await c.query<{ h: string }>('SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS h')).rows[0].h);
    t.ok(horizon > maxBurnt, `the horizon (${horizon}) is past the burnt xids (up to ${maxBurnt})`);
    await waitUntil(async () => (await tailHead()).xid >= horizon, 5_000, `the tail to read at horizon ${horizon}`);
    const head = await tailHead();
    t.ok(head.xid >= horizon && head.xid > r1.xid, `the tail's head (${head.xid}:${head.seq}) lies at the horizon, past r1 (xid ${r1.xid})`);
    // Nothing may have written the burnt commit records out, or the crash
    // would not lose them and their xids would not come back.
    await assertUnwritten(c, insertBefore);
    return { maxBurnt, horizon };
  });

  await crashAndProveReuse(t, maxBurnt, horizon);

  const r2 = await commitRow('r2');
  t.ok(r2.xid < horizon, `r2's xid ${r2.xid} lies below the horizon ${horizon} the tail had read at`);
  t.ok(r2.xid > r1.xid, `r2's xid ${r2.xid} is after r1's ${r1.xid}`);

  await live.waitFor((c) => c.seqs.length >= 2, 20_000, 'r2 on the stream that was open across the crash');
  const page = await getJson(`${daemon.base}/v1/changes?project=${PROJECT}&after=${r1.seq}`);
  t.equal(page.status, 200);
  t.same(page.body.events.map((e: { seq: number }) => e.seq), [r2.seq], 'a poll after r1 returns r2');

  // A row committed after r2 is the witness: a second copy of r2 would come before it.
  const r3 = await commitRow('r3');
  await live.waitFor((c) => c.seqs.includes(r3.seq), 20_000, 'the row after r2');
  t.same(live.seqs, [r1.seq, r2.seq, r3.seq], 'the live stream delivers r2 once, after r1');
  t.equal(live.closed, false, 'the stream stayed open across the crash');

  const resumed = await connectSse(`${daemon.base}/v1/events?project=${PROJECT}&after=0`, { 'Last-Event-ID': String(r1.seq) });
  t.teardown(() => resumed.close());
  await resumed.waitFor((c) => c.seqs.includes(r3.seq), 10_000, 'r2 and r3 on a stream resumed after r1');
  t.same(resumed.seqs, [r2.seq, r3.seq], 'a stream resumed after r1 gets r2, once');

  t.ok(daemon.logs.some((l) => l.msg === 'Postgres restarted; the tail reads again from its last row'), 'the tail noticed the restart');
});

t.test('a catch-up batch read before a crash does not vouch for rows committed after it', async (t) => {
  // A stream paused on backpressure keeps the rest of its catch-up batch. If
  // Postgres crashes meanwhile, that batch's horizon belongs to the old server
  // run: rows committed after the crash under reissued xids lie below it, and
  // the tail may publish them while the stream is still paused.
  const project = 'stale';
  const backlog = await withClient(async (c) => {
    await c.query(`SELECT pgfeed.emit($1, 'old', jsonb_build_object('i', g, 'pad', repeat('x', 900))) FROM generate_series(1, 300) g`, [project]);
    return deliveryOrder(c, project);
  });

  const timers = trackTimers(t);
  // No idle timers, so that every timer left is the feed's.
  const pool = new pg.Pool({ connectionString: cluster.url, max: 4, idleTimeoutMillis: 0 });
  const scope = new ReadScope(pool);
  pool.on('error', () => {}); // the crash kills its connections; the feed retries
  t.teardown(() => pool.end());
  const metrics = createMetrics();
  const log = createLogger('silent');
  const hub = new Hub();
  const tail = new Tail(scope, hub, metrics, log, { pollMs: 100, heldPollMs: 25, ringEvents: 10_000, ringBytes: 64 << 20 });
  // Pushes back on its first write only.
  const sink = new RecordingSink((n) => n === 1);

  const { maxBurnt, horizon, sub } = await withClient(async (c) => {
    await afterWalWriterRound(c);
    const insertBefore = (await c.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0].lsn;
    const maxBurnt = await burnXids(c, BURN);
    const horizon = Number((await c.query<{ h: string }>('SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS h')).rows[0].h);
    // The feed starts above the burnt xids: the stream's one catch-up batch
    // (300 rows, so not full) vouches for everything below that horizon.
    await tail.start();
    const sub = new Subscriber({ tail, hub, catchup: new Catchup(scope, 4, metrics), metrics, log }, { slowClientTimeoutMs: 60_000, eventNames: true, catchupBytes: 512 * 1024 }, sink, { project, types: [] }, { xid: 0, seq: 0 });
    sub.start();
    await waitUntil(() => sub.state === 'paused', 5_000, 'the stream to pause on its first write', { intervalMs: 10 });
    t.ok(sink.seqs.length < backlog.length, `paused part-way through the batch (${sink.seqs.length} of ${backlog.length})`);
    await assertUnwritten(c, insertBefore);
    return { maxBurnt, horizon, sub };
  });
  t.teardown(() => (sub.close(), tail.close()));

  await crashAndProveReuse(t, maxBurnt, horizon);
  const r2 = await commitRow('r2', project);
  t.ok(r2.xid < horizon, `r2's xid ${r2.xid} lies below the batch's horizon ${horizon}`);
  // The tail reads r2 while the stream is still paused, so the stream must find it itself.
  await waitUntil(() => tail.lastRow.seq === r2.seq, 10_000, 'the in-process tail to read r2', { intervalMs: 20 });
  t.equal(sub.state, 'paused', 'the stream was still paused when the tail read r2');

  sink.release();
  await waitUntil(() => sink.seqs.includes(r2.seq), 10_000, 'r2 on the stream', { intervalMs: 20 });
  // A row committed after r2 is the witness: a second copy of r2 would come before it.
  const r3 = await commitRow('r3', project);
  await waitUntil(() => sink.seqs.includes(r3.seq), 10_000, 'the row after r2', { intervalMs: 20 });
  t.same(sink.seqs, [...backlog, r2.seq, r3.seq], `the backlog, then r2, each once (got ${sink.seqs.length}: ${sink.seqs.slice(0, 3)} … ${sink.seqs.slice(-3)}; backlog ${backlog.length}: ${backlog.slice(0, 3)} … ${backlog.slice(-3)}; r2 ${r2.seq})`);
  t.equal(sub.state, 'live', 'and the stream is live');

  sub.close();
  await tail.close();
  await assertReleased(t, hub, timers);
});
