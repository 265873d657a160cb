import type { Position } from '../interfaces.js';
import type { Queryable } from './row-security.js';

export type CursorLookup =
  | { readonly kind: 'found'; readonly pos: Position }
  | { readonly kind: 'unknown' }
  | { readonly kind: 'expired'; readonly earliest: number | null };

/**
 * Turns a public cursor (a seq) into a position. A seq of another project is
 * unknown to this stream. A seq that retention has pruned is expired: a
 * silent restart from "somewhere" would skip rows.
 *
 * A resume costs two index lookups. `earliest`, the project's first retained
 * event in delivery order (what after=0 starts with), is looked up for an
 * expired cursor only: CASE runs its subquery only when the branch is taken.
 * It is ordered by (xid, seq): the lowest seq is not the first event, since
 * seqs are not delivered in order (docs/ordering.md).
 */
export async function positionOf(db: Queryable, seq: number, project: string): Promise<CursorLookup> {
  const { rows } = await db.query<{ xid: string | null; pruned: string; earliest: string | null }>(
    `SELECT c.xid::text AS xid, s.pruned_through::text AS pruned,
            CASE WHEN c.xid IS NULL AND $1::bigint <= s.pruned_through THEN
              (SELECT e.seq::text FROM pgfeed.change_log e WHERE e.project = $2 ORDER BY e.xid, e.seq LIMIT 1)
            END AS earliest
     FROM pgfeed.settings s LEFT JOIN pgfeed.change_log c ON c.seq = $1 AND c.project = $2`,
    [String(seq), project],
  );
  const { xid, pruned, earliest } = rows[0];
  if (xid !== null) return { kind: 'found', pos: { xid: Number(xid), seq } };
  if (seq <= Number(pruned)) return { kind: 'expired', earliest: earliest === null ? null : Number(earliest) };
  return { kind: 'unknown' };
}
