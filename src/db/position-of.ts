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

/** The since= lookup; exported so a test can check its plan. */
export const POSITION_AT_SQL = `SELECT c.xid::text AS xid, c.seq::text AS seq, p.expired, p.earliest::text AS earliest
     FROM (SELECT $1::timestamptz AS at) t
     LEFT JOIN LATERAL (
       SELECT x.xid, x.seq FROM pgfeed.change_log x WHERE x.created_at >= t.at ORDER BY x.created_at, x.xid, x.seq LIMIT 1
     ) c ON true
     LEFT JOIN LATERAL (
       SELECT true AS expired,
              (SELECT e.seq FROM pgfeed.change_log e WHERE e.project = $2 AND (e.xid, e.seq) > (m.xid, m.seq) ORDER BY e.xid, e.seq LIMIT 1) AS earliest
       FROM pgfeed.pruned m WHERE m.project = $2 AND m.max_at >= t.at
     ) p ON true`;

export type TimeLookup =
  | { readonly kind: 'found'; readonly pos: Position }
  | { readonly kind: 'none' }
  | { readonly kind: 'expired'; readonly earliest: number | null };

/**
 * Where `since=<time>` starts: just before the first event, by created_at
 * (its transaction's start), at or after the time, across all projects; one
 * lookup on change_log_created_at (docs/retention.md has the plan). The
 * position (xid, seq - 1) sorts right before that event, and nothing else
 * lies between: it is the first of its transaction. Expired when retention
 * has removed an event of the project whose transaction began at or after
 * the time: the stream would start after a gap.
 */
export async function positionAt(db: Queryable, at: string, project: string): Promise<TimeLookup> {
  const { rows } = await db.query<{ xid: string | null; seq: string | null; expired: boolean | null; earliest: string | null }>(
    POSITION_AT_SQL,
    [at, project],
  );
  const r = rows[0];
  if (r.expired) return { kind: 'expired', earliest: r.earliest === null ? null : Number(r.earliest) };
  if (r.xid === null) return { kind: 'none' };
  return { kind: 'found', pos: { xid: Number(r.xid), seq: Number(r.seq) - 1 } };
}
