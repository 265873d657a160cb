// The correctness core (docs/ordering.md): with writers committing out of seq
// order, readBatch must return exactly the committed rows, once each, in
// (xid, seq) order. A plain `seq > cursor` reader is run beside it and must
// be seen to lose rows: that is why the horizon exists.
import t from 'tap';
import type pg from 'pg';
import { readBatch } from '../src/db/read-batch.js';
import type { Filter, Position } from '../src/interfaces.js';
import { isAfter } from '../src/position.js';
import { testDatabase } from './harness/db.js';
import { mulberry32 } from './helpers/random.js';
import { deliveryOrder } from './helpers/change-log.js';
import { sleep } from './helpers/wait.js';

const RUNS = Number(process.env.PGFEED_ORDERING_RUNS ?? 200);
const WRITERS = 8;

/** Reads with readBatch from `start` until `done()` and the horizon has passed every writer. */
async function horizonReader(pool: pg.Pool, start: Position, filter: Filter | null, rnd: () => number, done: () => number) {
  const got: { seq: number; pos: Position }[] = [];
  let pos = start;
  for (let i = 0; i < 100_000; i++) {
    const finished = done();
    const batch = await readBatch(pool, pos, filter, 1 + Math.floor(rnd() * 7));
    for (const r of batch.rows) got.push({ seq: r.seq, pos: { xid: r.xid, seq: r.seq } });
    pos = batch.covered;
    // Stop only after a short batch read *after* the writers finished, under a
    // horizon past all of them (their xids are all below it then).
    if (finished && !batch.full && batch.horizon > finished) return got;
    if (!batch.full) await sleep(rnd() * 3);
  }
  throw new Error('reader did not finish');
}

/** The bug the horizon prevents: a cursor that is just the last seq seen. */
async function naiveReader(pool: pg.Pool, project: string, state: { cursor: number }, done: () => number) {
  const got: number[] = [];
  for (let i = 0; i < 100_000; i++) {
    const finished = done();
    const { rows } = await pool.query<{ seq: string }>(
      'SELECT seq FROM pgfeed.change_log WHERE project = $1 AND seq > $2 ORDER BY seq LIMIT 5',
      [project, state.cursor],
    );
    for (const r of rows) {
      got.push(Number(r.seq));
      state.cursor = Number(r.seq);
    }
    if (finished && rows.length === 0) return got;
    await sleep(1);
  }
  throw new Error('naive reader did not finish');
}

t.test(`${RUNS} randomized runs, ${WRITERS} concurrent writers each`, async (t) => {
  const db = await testDatabase(t, { poolSize: WRITERS + 6 });
  await db.pool.query(`CREATE TABLE ev (id bigserial PRIMARY KEY, project text NOT NULL, w int, n int);
    SELECT pgfeed.track('ev', 'project')`);
  let naiveLosses = 0;
  let failures = 0;
  for (let run = 0; run < RUNS && failures === 0; run++) {
    const seed = 0x5eed + run;
    const rnd = mulberry32(seed);
    const project = `run${run}`;
    const committed: number[] = [];
    // Where the previous runs ended; their rows are final already.
    const start = (await readBatch(db.pool, { xid: 0, seq: 0 }, { project, types: [] }, 1)).covered;
    let finishedAt = 0; // the horizon to pass: greater than every writer xid once set
    const done = () => finishedAt;
    const naiveState = { cursor: Number((await db.pool.query('SELECT coalesce(max(seq),0)::text AS m FROM pgfeed.change_log')).rows[0].m) };

    const writer = async (w: number) => {
      const c = await db.pool.connect();
      try {
        for (let k = 0; k < 3; k++) {
          await c.query('BEGIN');
          const mine: number[] = [];
          const rows = 1 + Math.floor(rnd() * 3);
          let savepointed: number[] | null = null;
          for (let i = 0; i < rows; i++) {
            if (rnd() < 0.2 && savepointed === null) {
              await c.query('SAVEPOINT s');
              savepointed = [];
            }
            const seq = rnd() < 0.5
              ? (await c.query(`SELECT pgfeed.emit($1, 'tick', jsonb_build_object('w', $2::int)) AS s`, [project, w])).rows[0].s
              : (await c.query(`INSERT INTO ev (project, w, n) VALUES ($1, $2, $3)`, [project, w, i]),
                (await c.query(`SELECT currval('pgfeed.change_log_seq_seq') AS s`)).rows[0].s);
            (savepointed ?? mine).push(Number(seq));
            await sleep(rnd() * 4);
          }
          if (savepointed) {
            if (rnd() < 0.5) await c.query('ROLLBACK TO SAVEPOINT s');
            else mine.push(...savepointed);
          }
          if (rnd() < 0.15) {
            await c.query('ROLLBACK');
          } else {
            await sleep(rnd() * 6);
            await c.query('COMMIT');
            committed.push(...mine);
          }
        }
      } finally {
        c.release();
      }
    };

    // The scripted out-of-order pair: A takes a lower seq, B a higher one and
    // commits first; A commits only after the naive reader has moved past B.
    const outOfOrder = async () => {
      const a = await db.pool.connect();
      const b = await db.pool.connect();
      try {
        await a.query('BEGIN');
        const sa = Number((await a.query(`SELECT pgfeed.emit($1, 'slow', '{}') AS s`, [project])).rows[0].s);
        await b.query('BEGIN');
        const sb = Number((await b.query(`SELECT pgfeed.emit($1, 'fast', '{}') AS s`, [project])).rows[0].s);
        await b.query('COMMIT');
        committed.push(sb);
        for (let i = 0; i < 200 && naiveState.cursor < sb; i++) await sleep(2);
        await a.query('COMMIT');
        committed.push(sa);
      } finally {
        a.release();
        b.release();
      }
    };

    const filter: Filter | null = run % 2 ? { project, types: [] } : null;
    const readerP = horizonReader(db.pool, start, filter, rnd, done);
    const naiveP = naiveReader(db.pool, project, naiveState, done);
    await Promise.all([outOfOrder(), ...Array.from({ length: WRITERS }, (_, w) => writer(w))]);
    finishedAt = Number((await db.pool.query(`SELECT pg_current_xact_id()::text AS x`)).rows[0].x);
    const [got, naive] = await Promise.all([readerP, naiveP]);

    const mineOnly = filter ? got : got.filter((g) => committed.includes(g.seq));
    if (!filter) {
      // A global reader sees only this run's rows: earlier runs ended before `start`.
      const foreign = got.filter((g) => !committed.includes(g.seq));
      if (foreign.length) failures++, t.fail(`run ${run} (seed ${seed}): read rows nobody committed: ${foreign.map((f) => f.seq)}`);
    }
    const seqs = mineOnly.map((g) => g.seq);
    const expected = await deliveryOrder(db.pool, project);
    const missing = committed.filter((s) => !seqs.includes(s));
    const dup = seqs.length - new Set(seqs).size;
    const ordered = mineOnly.every((g, i) => i === 0 || isAfter(g.pos, mineOnly[i - 1].pos));
    const ok = missing.length === 0 && dup === 0 && ordered && seqs.length === committed.length && String(seqs) === String(expected);
    if (!ok) {
      failures++;
      t.fail(`run ${run} (seed ${seed}): missing ${missing}, duplicated ${dup}, ordered ${ordered}, got ${seqs.length} of ${committed.length}; got [${seqs}] expected [${expected}]`);
    }
    if (committed.some((s) => !naive.includes(s))) naiveLosses++;
  }
  t.equal(failures, 0, `readBatch delivered exactly the committed rows in (xid, seq) order in all ${RUNS} runs`);
  t.equal(naiveLosses, RUNS, `the naive seq > cursor reader lost rows in every run (${naiveLosses}/${RUNS})`);
});

t.test('the scripted case: tx1 inserts first, tx2 commits first', async (t) => {
  const db = await testDatabase(t);
  const a = await db.pool.connect();
  const b = await db.pool.connect();
  t.teardown(() => (a.release(), b.release()));
  await a.query('BEGIN');
  const s1 = Number((await a.query(`SELECT pgfeed.emit('p', 'one', '{}') AS s`)).rows[0].s);
  await b.query('BEGIN');
  const s2 = Number((await b.query(`SELECT pgfeed.emit('p', 'two', '{}') AS s`)).rows[0].s);
  await b.query('COMMIT');
  t.ok(s1 < s2);

  const filter = { project: 'p', types: [] };
  const held = await readBatch(db.pool, { xid: 0, seq: 0 }, filter);
  t.same(held.rows, [], 'tx2 is committed but withheld: tx1 below it is still open');
  const naive = (await db.pool.query(`SELECT seq::int FROM pgfeed.change_log WHERE seq > 0 ORDER BY seq`)).rows.map((r) => r.seq);
  t.same(naive, [s2], 'a naive reader sees tx2 now, moves its cursor past s1, and will never see tx1');

  await a.query('COMMIT');
  const after = await readBatch(db.pool, held.covered, filter);
  t.same(after.rows.map((r) => r.seq), [s1, s2], 'both arrive, tx1 first, once the horizon passes');
});
