import type pg from 'pg';
import type { Position } from '../interfaces.js';

export type CursorLookup =
  | { readonly kind: 'found'; readonly pos: Position }
  | { readonly kind: 'unknown' }
  | { readonly kind: 'expired'; readonly earliest: number | null };

/**
 * Turns a public cursor (a seq) into a position. A seq of another project is
 * unknown to this stream. A seq that retention has pruned is expired: a
 * silent restart from "somewhere" would skip rows.
 *
 * Every resume pays for the first query only, two index lookups. The
 * earliest retained event is looked up for an expired cursor alone.
 */
export async function positionOf(db: Pick<pg.Pool, 'query'>, seq: number, project: string): Promise<CursorLookup> {
  const { rows } = await db.query<{ xid: string | null; pruned: string }>(
    `SELECT (SELECT xid::text FROM pgfeed.change_log WHERE seq = $1 AND project = $2) AS xid,
            (SELECT pruned_through::text FROM pgfeed.settings) AS pruned`,
    [String(seq), project],
  );
  const { xid, pruned } = rows[0];
  if (xid !== null) return { kind: 'found', pos: { xid: Number(xid), seq } };
  if (seq <= Number(pruned)) return { kind: 'expired', earliest: await earliestOf(db, project) };
  return { kind: 'unknown' };
}

/**
 * The first retained event of the project in delivery order, (xid, seq):
 * what after=0 starts with. The lowest seq is not it, since seqs are not
 * delivered in order (docs/ordering.md).
 */
async function earliestOf(db: Pick<pg.Pool, 'query'>, project: string): Promise<number | null> {
  const { rows } = await db.query<{ seq: string }>(
    'SELECT seq::text FROM pgfeed.change_log WHERE project = $1 ORDER BY xid, seq LIMIT 1',
    [project],
  );
  return rows.length ? Number(rows[0].seq) : null;
}
