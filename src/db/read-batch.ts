import type pg from 'pg';
import type { Batch, ChangeRow, Filter, Position, ServerIdentity } from '../interfaces.js';
import { comparePositions, horizonPosition, isAfter, maxPosition, START } from '../position.js';
import { identityOf, IDENTITY_COLUMNS } from './server-identity.js';

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
  // The tail times each read from its newest row's write (delivery-steps.ts): created_at to the microsecond, as epoch ms.
  const written = byProject ? '' : ', extract(epoch FROM c.created_at)::float8 * 1000 AS written';
  // Which server, run and timeline answered: see server-identity.ts.
  // The pruned mark, read in the same snapshot as the rows: a read that sees
  // rows after its position deleted also sees the mark that says so. A
  // project's read checks its project's mark only; the tail checks the
  // global one. `earliest` is looked up only when the mark has passed the position.
  const mark = byProject
    ? `SELECT p.xid, p.seq, CASE WHEN (p.xid, p.seq) > ($1::text::xid8, $2::bigint) THEN
         (SELECT e.seq FROM pgfeed.change_log e WHERE e.project = $4 AND (e.xid, e.seq) > (p.xid, p.seq) ORDER BY e.xid, e.seq LIMIT 1)
       END AS earliest FROM pgfeed.pruned p WHERE p.project = $4`
    : 'SELECT r.pruned_xid AS xid, r.pruned_seq AS seq, NULL::bigint AS earliest FROM pgfeed.retention r';
  sql = `SELECT h.xmin::text AS horizon, ${held} AS held, ${IDENTITY_COLUMNS}, m.xid::text AS pruned_xid, m.seq::text AS pruned_seq, m.earliest::text AS earliest,
      c.seq::text AS seq, c.xid::text AS xid, c.project, c.type, c.op, c.tbl,
      c.data::text AS data, to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at${written}
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
 * `written` is selected by the shared tail's read only.
 */
type RawRow = [
  horizon: string, held: boolean, system: string, database: string, timeline: number | null, started: number, standby: boolean,
  prunedXid: string | null, prunedSeq: string | null, earliest: string | null,
  seq: string | null, xid: string, project: string, type: string, op: string | null, tbl: string | null, data: string | null, at: string,
  written?: number | null,
];

/** SQLSTATEs of a prepared statement that is missing on, or already on, the server connection: a transaction-pooling PgBouncer before 1.21 moves statements between server connections. */
const STATEMENT_MOVED = new Set(['26000', '42P05']);

/** Whether the shared tail's read still runs prepared: false for good once a pooler has shown it cannot keep prepared statements. */
let prepareTail = true;

/**
 * The shared tail's read runs prepared, on every connection it lands on: it
 * is on the path of every live event, and parsing and planning it took a
 * third of its round trip. Its plan does not depend on its parameters.
 * Filtered reads are planned each time: whether the project index or the
 * global one serves depends on the project. Behind a pooler that loses
 * prepared statements it is planned each time too, from the first failure.
 */
async function tailQuery(db: Queryable, sql: string, params: unknown[]): Promise<RawRow[]> {
  if (prepareTail) {
    try {
      return (await db.query<RawRow>({ name: 'pgfeed_tail_read', text: sql, values: params, rowMode: 'array' })).rows;
    } catch (err) {
      if (!STATEMENT_MOVED.has((err as { code?: string }).code ?? '')) throw err;
      prepareTail = false;
    }
  }
  return (await db.query<RawRow>({ text: sql, values: params, rowMode: 'array' })).rows;
}

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
  const rows = filter ? (await db.query<RawRow>({ text: sql, values: params, rowMode: 'array' })).rows : await tailQuery(db, sql, params);
  const head = rows[0];
  const horizon = Number(head[0]);
  const out: ChangeRow[] = [];
  let sorted = true;
  let written: { oldest: number; newest: number } | null = null;
  for (const r of rows) {
    if (r[10] === null) break;
    const w = r[18];
    if (w != null) {
      if (written === null) written = { oldest: w, newest: w };
      else if (w > written.newest) written.newest = w;
      else if (w < written.oldest) written.oldest = w;
    }
    const row: ChangeRow = { seq: Number(r[10]), xid: Number(r[11]), project: r[12], type: r[13], op: r[14], tbl: r[15], data: r[16], at: r[17] };
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
  const [, held, system, database, timeline, started, standby, prunedXid, prunedSeq, earliest] = head;
  const pruned = prunedXid === null ? START : { xid: Number(prunedXid), seq: Number(prunedSeq) };
  // After START means from the start of retained history: nothing is missed there.
  const reset = comparePositions(after, START) !== 0 && isAfter(pruned, after) ? { earliest: earliest === null ? null : Number(earliest) } : null;
  return { rows: out, horizon, covered, full, held, server: identityOf({ system, database, timeline, started, standby }), pruned, reset, written };
}

/** Where a fresh tail starts: the horizon, and the last row below it in delivery order, under one snapshot. */
export async function startPoint(db: Queryable): Promise<{ horizon: number; last: Position | null; server: ServerIdentity }> {
  const { rows } = await db.query<{ horizon: string; system: string; database: string; timeline: number | null; started: number; standby: boolean; xid: string | null; seq: string | null }>(
    `SELECT h.xmin::text AS horizon, ${IDENTITY_COLUMNS}, l.xid::text, l.seq::text
     FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) h
     LEFT JOIN LATERAL (
       SELECT xid, seq FROM pgfeed.change_log WHERE xid < h.xmin ORDER BY xid DESC, seq DESC LIMIT 1
     ) l ON true`,
  );
  const r = rows[0];
  return { horizon: Number(r.horizon), server: identityOf(r), last: r.xid === null ? null : { xid: Number(r.xid), seq: Number(r.seq) } };
}
