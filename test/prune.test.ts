// pgfeed.prune(): the rules, the horizon, the prefix in delivery order, the
// marks a reader checks, and one pruner at a time.
import t from 'tap';
import { testDatabase } from './harness/db.js';
import { emit } from './helpers/change-log.js';

const db = await testDatabase(t);

async function rules(maxAge: string | null, maxRows: number | null): Promise<void> {
  await db.pool.query('UPDATE pgfeed.retention SET max_age = $1::interval, max_rows = $2', [maxAge, maxRows]);
}
const prune = async (step = 5000): Promise<number | null> => {
  const v = (await db.pool.query<{ n: string | null }>('SELECT pgfeed.prune($1) AS n', [step])).rows[0].n;
  return v === null ? null : Number(v);
};
const mark = async () => (await db.pool.query('SELECT pruned_xid::text AS xid, pruned_seq::text AS seq FROM pgfeed.retention')).rows[0];
const left = async (project: string) => (await db.pool.query<{ seq: string }>('SELECT seq FROM pgfeed.change_log WHERE project = $1 ORDER BY xid, seq', [project])).rows.map((r) => Number(r.seq));

t.test('off by default: nothing is pruned', async (t) => {
  await emit(db.pool, 'off', 'e', 3);
  t.equal(await prune(), 0);
  t.equal((await left('off')).length, 3);
});

t.test('by rows: a prefix in delivery order, in steps, with the marks moved in the same commit', async (t) => {
  await db.pool.query('DELETE FROM pgfeed.change_log');
  const a = await emit(db.pool, 'a', 'e', 6);
  const b = await emit(db.pool, 'b', 'e', 4);
  await rules(null, 4);
  // The last seq drawn is b[3]; rows with 4 or more seqs drawn after them go: a[0..5].
  t.equal(await prune(4), 4, 'a step removes at most `step` rows');
  t.equal(await prune(4), 2);
  t.equal(await prune(4), 0, 'then nothing is left to prune');
  t.same(await left('a'), []);
  t.same(await left('b'), b);
  const last = (await db.pool.query('SELECT xid::text FROM pgfeed.change_log WHERE seq = $1', [b[0]])).rows[0];
  t.ok(last, 'b is kept');
  t.equal((await mark()).seq, String(a[5]), 'the global mark is the last pruned position');
  const perProject = (await db.pool.query('SELECT project, seq::text FROM pgfeed.pruned ORDER BY project')).rows;
  t.same(perProject, [{ project: 'a', seq: String(a[5]) }], 'a project mark only for the project that lost rows');
  t.equal((await db.pool.query('SELECT pruned_through::text AS p FROM pgfeed.settings')).rows[0].p, String(a[5]), 'pruned_through is the highest pruned seq');
});

t.test('by age, stopping at the first row kept: the pruned part is always a prefix of the delivery order', async (t) => {
  await rules(null, null);
  await db.pool.query('DELETE FROM pgfeed.change_log');
  // `late` begins first (old created_at) but takes its xid last; `old` rows are backdated.
  const old = await emit(db.pool, 'age', 'e', 2);
  await db.pool.query(`UPDATE pgfeed.change_log SET created_at = now() - interval '2 hours' WHERE seq = ANY($1)`, [old]);
  const young = await emit(db.pool, 'age', 'e', 1);
  const older = await emit(db.pool, 'age', 'e', 1);
  await db.pool.query(`UPDATE pgfeed.change_log SET created_at = now() - interval '3 hours' WHERE seq = ANY($1)`, [older]);
  await rules('1 hour', null);
  t.equal(await prune(), 2, 'the two old rows go');
  t.same(await left('age'), [...young, ...older], 'an old row after a young one in delivery order waits for it');
});

t.test('only below the xmin horizon', async (t) => {
  await rules(null, null);
  await db.pool.query('DELETE FROM pgfeed.change_log');
  const before = await emit(db.pool, 'h', 'e', 1);
  await db.withClient(async (open) => {
    await open.query('BEGIN');
    await open.query('SELECT pg_current_xact_id()'); // holds the horizon from here on
    const after = await emit(db.pool, 'h', 'e', 3);
    await rules(null, 1);
    t.equal(await prune(), 1, 'only the row below the horizon');
    t.same(await left('h'), after);
    await open.query('COMMIT');
    t.equal(await prune(), 2, 'the rest once the horizon passes, keeping one');
    t.same(await left('h'), after.slice(2));
  });
  t.ok(before.length);
});

t.test('one pruner at a time: a step while another holds the lock returns NULL', async (t) => {
  await db.pool.query('DELETE FROM pgfeed.change_log');
  await emit(db.pool, 'lock', 'e', 3);
  await rules(null, 1);
  await db.withClient(async (other) => {
    await other.query('BEGIN');
    t.not((await other.query('SELECT pgfeed.prune(1) AS n')).rows[0].n, null, 'the first pruner takes the lock');
    t.equal(await prune(), null, 'the second is told another prunes');
    await other.query('ROLLBACK');
  });
  t.equal(await prune(), 2, 'an interrupted step leaves nothing behind: it rolled back whole');
});

t.test('prune_all runs the whole pass in committed steps', async (t) => {
  await rules(null, null);
  await db.pool.query('DELETE FROM pgfeed.change_log');
  const seqs = await emit(db.pool, 'all', 'e', 7);
  await rules(null, 2);
  const { rows } = await db.pool.query('CALL pgfeed.prune_all(2)');
  t.equal(Number(rows[0].removed), 5);
  t.same(await left('all'), seqs.slice(5));
});

t.test('bad step', async (t) => {
  await t.rejects(prune(0), { code: '22023' });
});
