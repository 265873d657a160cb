// Rows moving back and forth between projects under concurrent writers that
// commit out of seq order, with rollbacks and a TRUNCATE in between: each
// project's stream, applied by op (insert adds, update replaces, delete
// removes, truncate clears), must rebuild exactly the rows the table holds
// for that project at the end, and arrive in the project's (xid, seq) order.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { deliveryOrder, emit } from '../helpers/change-log.js';
import { startDaemon } from '../helpers/daemon.js';
import { mulberry32 } from '../helpers/random.js';
import { connectSse, type SseClient } from '../helpers/sse-client.js';
import { sleep } from '../helpers/wait.js';

const PROJECTS = ['p1', 'p2', 'p3'];
const WRITERS = 6;
const TXNS = 25;

const db = await testDatabase(t, { poolSize: WRITERS + 4 });
await db.pool.query(`CREATE TABLE cards (id int PRIMARY KEY, project text NOT NULL, v int NOT NULL);
  CREATE INDEX ON cards (project);
  SELECT pgfeed.track('cards', 'project')`);
const d = await startDaemon(t, db.url);

// Streams opened before any write, from the start: they catch up, go live, and take every move live.
const streams = new Map<string, SseClient>();
for (const p of PROJECTS) {
  const c = await connectSse(`${d.base}/v1/events?project=${p}&after=0`);
  t.teardown(() => c.close());
  streams.set(p, c);
}

let nextId = 1_000_000;
/**
 * Each writer moves only rows of its own. Two transactions that change the
 * same row are delivered in xid order, which is not always the order they
 * committed in (docs/ordering.md, "Two transactions that change the same
 * row"), so a replay by op is exact for rows changed by one transaction at a
 * time; the writers still interleave and commit out of seq order.
 */
async function writer(w: number, seed: number): Promise<void> {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  const lo = w * 10_000;
  let own: number[] = (await db.pool.query<{ id: number }>('SELECT id FROM cards WHERE id >= $1 AND id < $2', [lo, lo + 10_000])).rows.map((r) => r.id);
  let next = lo + own.length + 1 + Math.floor(rnd() * 100);
  for (let n = 0; n < TXNS; n++) {
    await db.withClient(async (c) => {
      await c.query('BEGIN');
      for (let s = 0; s < 1 + Math.floor(rnd() * 3); s++) {
        const r = rnd();
        const one = own.length ? pick(own) : -1;
        if (r < 0.3 || own.length === 0) await c.query('INSERT INTO cards VALUES ($1, $2, 0)', [next++, pick(PROJECTS)]);
        // Moves: one row, or several of this writer's rows of a project at once, to another project.
        else if (r < 0.6) await c.query('UPDATE cards SET project = $1, v = v + 1 WHERE id = $2', [pick(PROJECTS), one]);
        else if (r < 0.7) await c.query('UPDATE cards SET project = $1, v = v + 1 WHERE project = $2 AND id >= $3 AND id < $4', [pick(PROJECTS), pick(PROJECTS), lo, lo + 10_000]);
        else if (r < 0.85) await c.query('UPDATE cards SET v = v + 1 WHERE id = $1', [one]);
        else await c.query('DELETE FROM cards WHERE id = $1', [one]);
      }
      // Held open a while, so later transactions of other writers commit first.
      await sleep(rnd() * 15);
      await c.query(rnd() < 0.1 ? 'ROLLBACK' : 'COMMIT');
      own = (await c.query<{ id: number }>('SELECT id FROM cards WHERE id >= $1 AND id < $2', [lo, lo + 10_000])).rows.map((r) => r.id);
    });
  }
}

/** One transaction that takes its seqs first and commits last. */
async function outOfOrder(): Promise<void> {
  await db.withClient(async (early) => {
    await early.query('BEGIN');
    await early.query(`INSERT INTO cards VALUES ($1, 'p1', 0)`, [nextId++]);
    await early.query(`UPDATE cards SET project = 'p2' WHERE id = $1`, [nextId - 1]);
    await db.pool.query(`INSERT INTO cards VALUES ($1, 'p2', 0)`, [nextId++]);
    await db.pool.query(`UPDATE cards SET project = 'p1' WHERE id = $1`, [nextId - 1]);
    await early.query('COMMIT');
  });
}

t.test('each project replays into exactly its rows', async (t) => {
  await Promise.all([outOfOrder(), ...Array.from({ length: WRITERS }, (_, w) => writer(w, 20261201 + w))]);
  await db.pool.query('TRUNCATE cards');
  await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w, 777 + w)));
  const moved = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM pgfeed.change_log WHERE type = 'cards.move_out'`);
  t.ok(moved.rows[0].n > 20, `rows really moved (${moved.rows[0].n} move_out events)`);

  for (const p of PROJECTS) await emit(db.pool, p, 'marker');
  for (const p of PROJECTS) {
    const c = streams.get(p)!;
    await c.waitFor((c) => c.events.some((e) => e.event === 'marker'), 30_000, `the marker of ${p}`);
    const rows = new Map<number, unknown>();
    t.same([...new Set(c.events.filter((e) => e.id).map((e) => e.json.project))], [p], 'only this project');
    for (const e of c.events) {
      if (!e.id || e.event === 'marker') continue;
      const ev = e.json;
      if (ev.op === 'insert') rows.set(ev.data.id, ev.data);
      else if (ev.op === 'update') rows.set(ev.data.new.id, ev.data.new);
      else if (ev.op === 'delete') rows.delete(ev.data.id);
      else if (ev.op === 'truncate') rows.clear();
    }
    const want = await db.pool.query<{ r: unknown }>(`SELECT to_jsonb(c.*) AS r FROM cards c WHERE project = $1 ORDER BY id`, [p]);
    const got = [...rows.values()].sort((a, b) => (a as { id: number }).id - (b as { id: number }).id);
    t.same(got, want.rows.map((r) => r.r), `${p}: the stream rebuilds the project's ${want.rows.length} rows`);
    t.same(c.seqs, await deliveryOrder(db.pool, p), `${p}: every event once, in (xid, seq) order`);
  }
});
