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
 */
export async function positionOf(db: Pick<pg.Pool, 'query'>, seq: number, project: string): Promise<CursorLookup> {
  const { rows } = await db.query<{ xid: string | null; pruned: string; earliest: string | null }>(
    `SELECT (SELECT xid::text FROM pgfeed.change_log WHERE seq = $1 AND project = $2) AS xid,
            (SELECT pruned_through::text FROM pgfeed.settings) AS pruned,
            (SELECT min(seq)::text FROM pgfeed.change_log WHERE project = $2) AS earliest`,
    [String(seq), project],
  );
  const { xid, pruned, earliest } = rows[0];
  if (xid !== null) return { kind: 'found', pos: { xid: Number(xid), seq } };
  if (seq <= Number(pruned)) return { kind: 'expired', earliest: earliest === null ? null : Number(earliest) };
  return { kind: 'unknown' };
}
