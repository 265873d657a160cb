// Resolving a cursor (a seq) to a position: found, unknown, or expired with
// the earliest retained event. Regression: `earliest` was min(seq) of the
// project, which is not where delivery resumes: seqs commit out of order, and
// the first retained event in (xid, seq) order can have a higher seq.
import t from 'tap';
import { positionOf } from '../src/db/position-of.js';
import { testDatabase } from './harness/db.js';

const db = await testDatabase(t);
const emit = async (c: { query: typeof db.pool.query }, project: string): Promise<number> =>
  Number((await c.query(`SELECT pgfeed.emit($1, 'e', '{}') AS s`, [project])).rows[0].s);

// A pruned event, then two transactions that commit their seqs out of order:
// `early` takes its xid first and its seq last.
const pruned = await emit(db.pool, 'p');
const [lowSeq, highSeq] = await db.withClient((early) =>
  db.withClient(async (late) => {
    await early.query('BEGIN');
    await early.query('SELECT pg_current_xact_id()');
    await late.query('BEGIN');
    const low = await emit(late, 'p');
    const high = await emit(early, 'p');
    await late.query('COMMIT');
    await early.query('COMMIT');
    return [low, high];
  }),
);
await db.pool.query('DELETE FROM pgfeed.change_log WHERE seq = $1', [pruned]);
await db.pool.query('UPDATE pgfeed.settings SET pruned_through = $1', [pruned]);
const other = await emit(db.pool, 'q');

t.test('a retained cursor is found with its position', async (t) => {
  const found = await positionOf(db.pool, highSeq, 'p');
  t.equal(found.kind, 'found');
  if (found.kind === 'found') t.equal(found.pos.seq, highSeq);
});

t.test('a seq of another project, or one never written, is unknown', async (t) => {
  t.same(await positionOf(db.pool, other, 'p'), { kind: 'unknown' });
  t.same(await positionOf(db.pool, other + 1000, 'p'), { kind: 'unknown' });
});

t.test('an expired cursor names the first retained event in delivery order, not the lowest seq', async (t) => {
  t.ok(lowSeq < highSeq, `seqs ${lowSeq} < ${highSeq}, while ${highSeq} is delivered first`);
  t.same(await positionOf(db.pool, pruned, 'p'), { kind: 'expired', earliest: highSeq });
  t.same(await positionOf(db.pool, pruned, 'empty'), { kind: 'expired', earliest: null }, 'null when the project retains nothing');
});

t.test('within one transaction, earliest is the lowest seq as a number, not as text', async (t) => {
  // 999 and 1000 in one transaction: as text, '1000' would sort first.
  await db.pool.query(`SELECT setval('pgfeed.change_log_seq_seq', 998)`);
  const seqs = await db.withTransaction(async (c) => [await emit(c, 'digits'), await emit(c, 'digits')]);
  t.same(seqs, [999, 1000]);
  t.same(await positionOf(db.pool, pruned, 'digits'), { kind: 'expired', earliest: 999 });
});
