// since=<time>: where it starts (the first event of the first transaction
// that began at or after it), what follows under out-of-order commits, how it
// meets after= and Last-Event-ID, retention, and that it is an index lookup.
import t from 'tap';
import { POSITION_AT_SQL } from '../../src/db/position-of.js';
import { testDatabase } from '../harness/db.js';
import { deliveryOrder, emit, emitBulk } from '../helpers/change-log.js';
import { startDaemon } from '../helpers/daemon.js';
import { connectSse, getJson } from '../helpers/sse-client.js';

const db = await testDatabase(t);

/** Sets the start time of the transaction that wrote `seq` (all of its rows share it, as now() gives them). */
async function began(seq: number, at: string): Promise<void> {
  await db.pool.query('UPDATE pgfeed.change_log SET created_at = $2 WHERE xid = (SELECT xid FROM pgfeed.change_log WHERE seq = $1)', [seq, at]);
}

// In delivery order: a (began 10:00), b (10:05), c (10:02, began before b
// but took its xid after b: it wrote later), d (10:10).
const [a] = await emit(db.pool, 's', 'a');
const [b] = await emit(db.pool, 's', 'b');
const [c] = await emit(db.pool, 's', 'c');
const [d] = await emit(db.pool, 's', 'd');
const [other] = await emit(db.pool, 'o', 'x');
await began(a, '2026-01-01T10:00:00Z');
await began(b, '2026-01-01T10:05:00Z');
await began(c, '2026-01-01T10:02:00Z');
await began(d, '2026-01-01T10:10:00Z');
await began(other, '2026-01-01T10:20:00Z');
const written = await deliveryOrder(db.pool, 's');

const daemon = await startDaemon(t, db.url);
const seqs = async (query: string) => (await getJson(`${daemon.base}/v1/changes?project=s&${query}`)).body.events.map((e: { seq: number }) => e.seq);

t.test('starts at the first event of the first transaction that began at or after the time', async (t) => {
  t.same(written, [a, b, c, d], 'the delivery order is the order of writing');
  t.same(await seqs('since=2026-01-01T10:00:00Z'), [a, b, c, d], 'at a transaction start: inclusive');
  t.same(await seqs('since=2026-01-01T10:03:00Z'), [b, c, d], 'b began first after 10:03; c, which began before, follows it in delivery order');
  t.same(await seqs('since=2026-01-01T10:01:00Z'), [c, d], 'c began first after 10:01; b, which began after it but wrote before it, is before the start');
  t.same(await seqs('since=2026-01-01T11:04:00%2B01:00'), [b, c, d], 'an offset is honoured (10:04 UTC)');
  t.same(await seqs('since=2026-01-01T10:10:00.000001Z'), [], 'after the last event of the project: nothing yet');
});

t.test('the stream starts at the same place', async (t) => {
  const s = await connectSse(`${daemon.base}/v1/events?project=s&since=2026-01-01T10:03:00Z`);
  t.teardown(() => s.close());
  await s.waitFor((s) => s.seqs.length === 3);
  t.same(s.seqs, [b, c, d]);
});

t.test('Last-Event-ID wins over since: an EventSource reconnecting to a since= URL resumes', async (t) => {
  const s = await connectSse(`${daemon.base}/v1/events?project=s&since=2026-01-01T10:00:00Z`, { 'Last-Event-ID': String(c) });
  t.teardown(() => s.close());
  await s.waitFor((s) => s.seqs.length === 1);
  t.same(s.seqs, [d]);
});

t.test('a time no event reaches yet behaves like after=now: the next event is the first', async (t) => {
  const s = await connectSse(`${daemon.base}/v1/events?project=s&since=2099-01-01T00:00:00Z`);
  t.teardown(() => s.close());
  await s.waitFor((s) => s.retry !== null);
  const [next] = await emit(db.pool, 's', 'next');
  await s.waitFor((s) => s.seqs.length >= 1);
  t.same(s.seqs, [next]);
});

t.test('bad input', async (t) => {
  for (const [q, code] of [
    ['since=2026-01-01T10:00:00Z&after=0', 'conflicting_cursors'],
    ['since=2026-01-01T10:00:00', 'invalid_since'],
    ['since=2026-02-30T10:00:00Z', 'invalid_since'],
    ['since=2026-01-01T24:00:00Z', 'invalid_since'],
    ['since=yesterday', 'invalid_since'],
    ['since=', 'invalid_since'],
  ]) {
    for (const path of ['/v1/events', '/v1/changes']) {
      const r = await getJson(`${daemon.base}${path}?project=s&${q}`);
      t.equal(r.status, 400, `${path}?${q}`);
      t.equal(r.body.error.code, code, `${path}?${q}: ${code}`);
    }
  }
});

t.test('a time at or before which retention removed an event of the project is 410 cursor_expired', async (t) => {
  await db.pool.query('UPDATE pgfeed.retention SET max_age = $1', ['1 hour']);
  t.equal(Number((await db.pool.query('SELECT pgfeed.prune() AS n')).rows[0].n), 5, 'every backdated event is pruned');
  await db.pool.query('UPDATE pgfeed.retention SET max_age = NULL');
  const retained = await deliveryOrder(db.pool, 's');
  const r = await getJson(`${daemon.base}/v1/changes?project=s&since=2026-01-01T10:10:00Z`);
  t.equal(r.status, 410, 'd, which began at 10:10, is gone');
  t.equal(r.body.error.code, 'cursor_expired');
  t.equal(r.body.error.earliest, String(retained[0]), 'earliest is the first retained event');
  t.same(await seqs('since=2026-01-01T10:10:00.000001Z'), retained, 'after the latest pruned start: served');
});

t.test('the lookup is one index scan on change_log_created_at, not a scan of the log', async (t) => {
  await emitBulk(db.pool, 'plan', 20_000, 10);
  await db.pool.query('ANALYZE pgfeed.change_log');
  const { rows } = await db.pool.query(`EXPLAIN (FORMAT JSON) ${POSITION_AT_SQL}`.replace('$1::timestamptz', `'2026-01-01T00:00:00Z'::timestamptz`).replaceAll('$2', `'plan'`));
  const scans: string[] = [];
  const walk = (node: any): void => {
    if (node['Relation Name'] === 'change_log') scans.push(`${node['Node Type']}${node['Index Name'] ? ' using ' + node['Index Name'] : ''}`);
    for (const child of node.Plans ?? []) walk(child);
  };
  walk(rows[0]['QUERY PLAN'][0].Plan);
  t.equal(scans[0], 'Index Scan using change_log_created_at', 'the start comes from one scan of the created_at index, cut at its first row');
  // The other reads change_log only for `earliest`, and only when since is expired.
  t.notOk(scans.some((s) => s.startsWith('Seq Scan')), `no sequential scan of change_log (${scans.join(', ')})`);
});
