// pgfeed emit: one event through pgfeed.emit(), its seq printed; the data
// is checked as JSON first, so a typo is a usage error.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { jsonResult, oneLineError, runCli } from '../helpers/cli.js';

const db = await testDatabase(t);
const env = { DATABASE_URL: db.url };
const row = async (seq: number) =>
  (await db.pool.query('SELECT project, type, op, tbl, data::text AS data FROM pgfeed.change_log WHERE seq = $1', [seq])).rows[0];
const events = async () => (await db.pool.query<{ seq: string }>('SELECT seq FROM pgfeed.change_log ORDER BY seq')).rows.map((r) => Number(r.seq));

t.test('emit prints the seq of the event it wrote', async (t) => {
  const r = await runCli(['emit', 'acme', 'deploy.finished', '{"version": "1.4.2", "n": [1, 2]}'], env);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^\d+\n$/, 'a seq, alone on its line');
  t.same(await row(Number(r.stdout)), { project: 'acme', type: 'deploy.finished', op: null, tbl: null, data: '{"n": [1, 2], "version": "1.4.2"}' });
});

t.test('--json: {seq}', async (t) => {
  const doc = jsonResult(t, await runCli(['emit', 'acme', 'cache.flushed', '--json'], env)) as { seq: number };
  t.same(Object.keys(doc), ['seq']);
  t.equal(typeof doc.seq, 'number');
  t.same(await row(doc.seq), { project: 'acme', type: 'cache.flushed', op: null, tbl: null, data: null }, 'without data, the data is null');
});

t.test('- reads the data from stdin, and numbers past 2^53 stay exact', async (t) => {
  const r = await runCli(['emit', 'acme', 'release.published', '-', '--json'], env, 20_000, '{"id": 12345678901234567890,\n "tag": "v2"}\n');
  const { seq } = jsonResult(t, r) as { seq: number };
  t.equal((await row(seq)).data, '{"id": 12345678901234567890, "tag": "v2"}');
});

t.test('bad data and refused events write nothing', async (t) => {
  const before = await events();
  oneLineError(t, await runCli(['emit', 'acme', 'e', '{"a": 1'], env), 2, /the data is not valid JSON/);
  oneLineError(t, await runCli(['emit', 'acme', 'e', '-'], env, 20_000, '[1, 2'), 2, /the data on stdin is not valid JSON/);
  oneLineError(t, await runCli(['emit', 'acme', 'pgfeed.reset', '{}'], env), 1, /pgfeed\.emit: the type prefix "pgfeed\." is reserved/);
  oneLineError(t, await runCli(['emit', '', 'e', '{}'], env), 1, /pgfeed\.emit: project must be a non-empty string/);
  // The marker: an event written after the refused ones is the only new one.
  const marker = jsonResult(t, await runCli(['emit', 'acme', 'marker', '--json'], env)) as { seq: number };
  t.same(await events(), [...before, marker.seq], 'only the marker was written');
});
