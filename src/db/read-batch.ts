import type pg from 'pg';
import type { Batch, ChangeRow, Filter, Position } from '../interfaces.js';
import { comparePositions, horizonPosition, isAfter, maxPosition, START } from '../position.js';

export const BATCH_SIZE = 512;

type Queryable = Pick<pg.Pool | pg.PoolClient | pg.Client, 'query'>;

/** `pr_*` → `pr\_%`: the prefix is matched literally, whatever it contains. */
function likePrefix(glob: string): string {
  return glob.slice(0, -1).replace(/[\\%_]/g, (c) => '\\' + c) + '%';
}

function splitTypes(types: readonly string[]): { exact: string[]; prefixes: string[] } {
  const exact: string[] = [];
  const prefixes: string[] = [];
  for (const t of types) (t.endsWith('*') ? prefixes : exact).push(t.endsWith('*') ? likePrefix(t) : t);
  return { exact, prefixes };
}

const sqlCache = new Map<string, string>();

/** When the server that answers started, in epoch ms: a horizon holds only within one server run. */
const STARTED_MS = 'extract(epoch FROM pg_postmaster_start_time())::float8 * 1000';

/** One SQL text per filter shape, so each shape gets a stable plan. */
function batchSql(byProject: boolean, exact: boolean, prefixes: boolean): string {
  const key = `${+byProject}${+exact}${+prefixes}`;
  let sql = sqlCache.get(key);
  if (sql) return sql;
  // The planner picks the (project, xid, seq) index or the global one from
  // its estimates. Leading the row comparison with project would force the
  // project index, but measured 2.5x slower on single-project catch-up.
  const where = ['(c.xid, c.seq) > ($1::text::xid8, $2::bigint)', 'c.xid < h.xmin'];
  if (byProject) where.push('c.project = $4');
  const typeOr: string[] = [];
  // Numbered in the order readBatch passes them: every parameter is used, so each has a type.
  let n = 5;
  if (exact) typeOr.push(`c.type = ANY($${n++}::text[])`);
  if (prefixes) typeOr.push(`c.type LIKE ANY($${n++}::text[])`);
  if (typeOr.length) where.push(`(${typeOr.join(' OR ')})`);
  // The unfiltered read (the shared tail) also asks whether committed rows
  // wait above the horizon: then it must poll, as their release may never NOTIFY.
  const held = byProject ? 'false' : 'EXISTS (SELECT 1 FROM pgfeed.change_log w WHERE w.xid >= h.xmin)';
  // Which server run answered: see Tail.noticeRestart and Subscriber.pump.
  // The pruned mark, read in the same snapshot as the rows: a read that sees
  // rows after its position deleted also sees the mark that says so. A
  // project's read checks its project's mark only; the tail checks the
  // global one. `earliest` is looked up only when the mark has passed the position.
  const mark = byProject
    ? `SELECT p.xid, p.seq, CASE WHEN (p.xid, p.seq) > ($1::text::xid8, $2::bigint) THEN
         (SELECT e.seq FROM pgfeed.change_log e WHERE e.project = $4 AND (e.xid, e.seq) > (p.xid, p.seq) ORDER BY e.xid, e.seq LIMIT 1)
       END AS earliest FROM pgfeed.pruned p WHERE p.project = $4`
    : 'SELECT r.pruned_xid AS xid, r.pruned_seq AS seq, NULL::bigint AS earliest FROM pgfeed.retention r';
  sql = `SELECT h.xmin::text AS horizon, ${held} AS held, ${STARTED_MS} AS started, m.xid::text AS pruned_xid, m.seq::text AS pruned_seq, m.earliest::text AS earliest,
      c.seq::text AS seq, c.xid::text AS xid, c.project, c.type, c.op, c.tbl,
      c.data::text AS data, to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at
    FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) h
    LEFT JOIN LATERAL (${mark}) m ON true
    LEFT JOIN LATERAL (
      SELECT * FROM pgfeed.change_log c WHERE ${where.join(' AND ')}
      ORDER BY c.xid, c.seq LIMIT $3
    ) c ON true`;
  sqlCache.set(key, sql);
  return sql;
}

/**
 * A result row, as an array in the SELECT's column order: pg then builds no
 * object per row, a measurable share of a replay's cost (bench/README.md).
 */
type RawRow = [
  horizon: string, held: boolean, started: number, prunedXid: string | null, prunedSeq: string | null, earliest: string | null,
  seq: string | null, xid: string, project: string, type: string, op: string | null, tbl: string | null, data: string | null, at: string,
];

/**
 * Reads up to `limit` rows after `after`, in (xid, seq) order, and only rows
 * below the horizon: those are final, so no later reader can see a row appear
 * before the last one returned. `filter` null reads every project (the shared tail).
 */
export async function readBatch(
  db: Queryable,
  after: Position,
  filter: Filter | null,
  limit: number = BATCH_SIZE,
): Promise<Batch> {
  const types = filter?.types.length ? splitTypes(filter.types) : { exact: [], prefixes: [] };
  const sql = batchSql(filter !== null, types.exact.length > 0, types.prefixes.length > 0);
  const params: unknown[] = [String(after.xid), String(after.seq), limit];
  if (filter) {
    params.push(filter.project);
    if (types.exact.length) params.push(types.exact);
    if (types.prefixes.length) params.push(types.prefixes);
  }
  const { rows } = await db.query<RawRow>({ text: sql, values: params, rowMode: 'array' });
  const head = rows[0];
  const horizon = Number(head[0]);
  const out: ChangeRow[] = [];
  let sorted = true;
  for (const r of rows) {
    if (r[6] === null) break;
    const row: ChangeRow = { seq: Number(r[6]), xid: Number(r[7]), project: r[8], type: r[9], op: r[10], tbl: r[11], data: r[12], at: r[13] };
    const prev = out[out.length - 1];
    if (prev && comparePositions(row, prev) < 0) sorted = false;
    out.push(row);
  }
  // The one-row outer side keeps the inner index order, so Postgres is not
  // asked to sort again (a sort of every batch); checked here all the same.
  if (!sorted) out.sort(comparePositions);
  const full = out.length >= limit;
  const last = out.length ? { xid: out[out.length - 1].xid, seq: out[out.length - 1].seq } : after;
  // A short batch has read everything below the horizon; a full one only up to its last row.
  const covered = full ? last : maxPosition(last, horizonPosition(horizon));
  const [, held, started, prunedXid, prunedSeq, earliest] = head;
  const pruned = prunedXid === null ? START : { xid: Number(prunedXid), seq: Number(prunedSeq) };
  // After START means from the start of retained history: nothing is missed there.
  const reset = comparePositions(after, START) !== 0 && isAfter(pruned, after) ? { earliest: earliest === null ? null : Number(earliest) } : null;
  return { rows: out, horizon, covered, full, held, started, pruned, reset };
}

/** Where a fresh tail starts: the horizon, and the last row below it in delivery order, under one snapshot. */
export async function startPoint(db: Queryable): Promise<{ horizon: number; last: Position | null; started: number }> {
  const { rows } = await db.query<{ horizon: string; started: number; xid: string | null; seq: string | null }>(
    `SELECT h.xmin::text AS horizon, ${STARTED_MS} AS started, l.xid::text, l.seq::text
     FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) h
     LEFT JOIN LATERAL (
       SELECT xid, seq FROM pgfeed.change_log WHERE xid < h.xmin ORDER BY xid DESC, seq DESC LIMIT 1
     ) l ON true`,
  );
  const r = rows[0];
  return { horizon: Number(r.horizon), started: r.started, last: r.xid === null ? null : { xid: Number(r.xid), seq: Number(r.seq) } };
}
