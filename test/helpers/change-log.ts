// Writing events and reading the order pgfeed must deliver them in, shared by
// the tests, the fault suite and the bench.
import type pg from 'pg';
import { sleep } from './wait.js';

export interface Queryable {
  query<R extends pg.QueryResultRow = any>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/**
 * Delivery order (docs/ordering.md): by transaction, then by seq within it.
 * Qualified, so that a select list aliasing `xid` (say as text) cannot change
 * what it sorts by.
 */
export const DELIVERY_ORDER = 'ORDER BY change_log.xid, change_log.seq';

/** A project's committed events in delivery order: what every subscriber must see. */
export async function deliveryOrder(q: Queryable, project: string): Promise<number[]> {
  const { rows } = await q.query<{ seq: string }>(`SELECT seq FROM pgfeed.change_log WHERE project = $1 ${DELIVERY_ORDER}`, [project]);
  return rows.map((r) => Number(r.seq));
}

/** Emits `n` events of `type`, one commit each (data `{i}`), and returns their seqs. */
export async function emit(q: Queryable, project: string, type = 'tick', n = 1): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(Number((await q.query(`SELECT pgfeed.emit($1, $2, jsonb_build_object('i', $3::int)) AS s`, [project, type, i])).rows[0].s));
  return out;
}

/** Writes `n` events of `type` with ~`padBytes` of data each, in commits of up to 1000 rows. */
export async function emitBulk(q: Queryable, project: string, n: number, padBytes: number, type = 'bulk'): Promise<void> {
  for (let done = 0; done < n; done += 1000) {
    await q.query(`SELECT pgfeed.emit($1, $4, jsonb_build_object('i', g, 'pad', repeat('x', $2))) FROM generate_series(1, $3) g`, [project, padBytes, Math.min(1000, n - done), type]);
  }
}

/** Writers that keep committing to `project` (one event per commit, of `type`) until stopped; stop() says how many they wrote. */
export function writersOf(q: Queryable, project: string, n = 4, type = 'w'): { stop: () => Promise<number> } {
  let running = true;
  let written = 0;
  const loops = Array.from({ length: n }, async () => {
    while (running) {
      await emit(q, project, type);
      written++;
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return written;
    },
  };
}

/** The keep-the-last-`keepRows` retention rule (docs/retention.md), and a whole pruning pass by hand, in committed steps; the rows removed. */
export async function pruneToLast(q: Queryable, keepRows: number): Promise<number> {
  await q.query('UPDATE pgfeed.retention SET max_rows = $1', [keepRows]);
  return Number((await q.query('CALL pgfeed.prune_all(2000)')).rows[0].removed);
}

/** What mixedWriters did: every kind must have happened for a run to prove anything. */
export interface MixedWrites {
  committed: number;
  rolledBack: number;
  /** Pairs that took seqs in one order and committed in the other. */
  interleaved: number;
}

interface ConnectingPool {
  connect(): Promise<Queryable & { release(): void }>;
}

/**
 * Writers that keep going until stopped, over `projects`: multi-row
 * transactions (1–4 events), some rolled back, and pairs of transactions
 * interleaved on purpose: the first takes its seq, the second takes a later
 * one and commits, then the first writes again and commits, so commits come
 * out of seq order (ordering.test.ts). `rnd` makes the choices.
 */
export function mixedWriters(pool: ConnectingPool, projects: readonly string[], rnd: () => number, n = 3): { stop: () => Promise<MixedWrites> } {
  let running = true;
  const done: MixedWrites = { committed: 0, rolledBack: 0, interleaved: 0 };
  const pickProject = () => projects[Math.floor(rnd() * projects.length)];
  const write = (c: Queryable, project: string) => c.query(`SELECT pgfeed.emit($1, 'mixed', jsonb_build_object('r', $2::float8))`, [project, rnd()]);
  const loop = async () => {
    const a = await pool.connect();
    const b = await pool.connect();
    try {
      while (running) {
        if (rnd() < 0.3) {
          await a.query('BEGIN');
          await write(a, pickProject());
          await b.query('BEGIN');
          await write(b, pickProject());
          await b.query('COMMIT');
          await write(a, pickProject());
          await a.query('COMMIT');
          done.interleaved++;
          continue;
        }
        await a.query('BEGIN');
        for (let i = 0, k = 1 + Math.floor(rnd() * 4); i < k; i++) await write(a, pickProject());
        if (rnd() < 0.2) {
          await a.query('ROLLBACK');
          done.rolledBack++;
        } else {
          await a.query('COMMIT');
          done.committed++;
        }
        await sleep(rnd() * 10);
      }
    } finally {
      a.release();
      b.release();
    }
  };
  const loops = Array.from({ length: n }, loop);
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return done;
    },
  };
}
