// A query that fails for a reason other than the connection (here: a column
// the read path needs is renamed away) is a fault, not an outage: a 500
// `internal` with an error-level log line naming the SQLSTATE and the query,
// never the retryable 503 / EventSource retry answer that would make every
// client retry it forever. The daemon keeps serving once it is mended.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { emit } from '../helpers/change-log.js';
import { metric, startDaemon } from '../helpers/daemon.js';
import { connectSse, getJson } from '../helpers/sse-client.js';
import { waitUntil } from '../helpers/wait.js';

const db = await testDatabase(t);
const d = await startDaemon(t, db.url);
const seq = String((await emit(db.pool, 'p', 'thing'))[0]);

async function logLine(msg: string, query: string): Promise<Record<string, unknown>> {
  const find = () => d.logs.find((l) => l.msg === msg && l.query === query);
  await waitUntil(() => find() !== undefined, 10_000, `the log line "${msg}" for query ${query}`);
  return find()!;
}

const rename = (from: string, to: string) => db.pool.query(`ALTER TABLE pgfeed.change_log RENAME COLUMN ${from} TO ${to}`);

t.test('a catch-up read that cannot run: /v1/changes answers 500 internal, and says why in the log', async (t) => {
  await rename('tbl', 'tbl_gone');
  t.teardown(() => rename('tbl_gone', 'tbl'));
  const r = await getJson(`${d.base}/v1/changes?project=p&after=0`);
  t.equal(r.status, 500);
  t.equal(r.body.error.code, 'internal');
  t.equal(r.headers.get('retry-after'), null, 'no Retry-After: this is not temporary');
  const line = await logLine('request failed: a query failed for a reason other than the connection', 'catchup');
  t.equal(line.level, 50, 'logged at level error');
  t.equal(line.sqlstate, '42703', 'with the SQLSTATE (undefined_column)');
  t.ok((await metric(d.base, 'pgfeed_query_failures_total', { query: 'catchup', cause: 'other' })) >= 1, 'counted as a fault, not an outage');
  t.equal(await metric(d.base, 'pgfeed_query_failures_total', { cause: 'unreachable' }), 0, 'and never as unreachable');
});

t.test('a cursor lookup that cannot run: an EventSource gets the JSON 500, not the retry answer', async (t) => {
  await rename('xid', 'xid_gone');
  t.teardown(() => rename('xid_gone', 'xid'));
  const c = await connectSse(`${d.base}/v1/events?project=p&after=${seq}`);
  t.teardown(() => c.close());
  t.equal(c.status, 500, 'a status an EventSource does not retry');
  await c.waitFor((c) => c.closed, 5_000, 'the answer to end');
  t.equal(JSON.parse(c.body).error.code, 'internal');
  const line = await logLine('request failed: a query failed for a reason other than the connection', 'lookup');
  t.equal(line.sqlstate, '42703');
});

t.test('mended, the same requests are served again', async (t) => {
  const r = await getJson(`${d.base}/v1/changes?project=p&after=0`);
  t.equal(r.status, 200);
  t.same(r.body.events.map((e: { seq: number }) => String(e.seq)), [seq]);
  const c = await connectSse(`${d.base}/v1/events?project=p&after=0`);
  t.teardown(() => c.close());
  await c.waitFor((c) => c.seqs.length === 1, 10_000, 'the event');
  t.same(c.seqs.map(String), [seq]);
});
