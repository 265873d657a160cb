import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { findBlocker } from './horizon.js';
import { loadMigrations } from './migrate.js';
import { listTracked, type TrackedRow } from './tracked.js';

/**
 * What `pgfeed doctor` finds: one finding per check, each saying what is
 * wrong and what to do. A check whose subject cannot be wrong for pgfeed
 * (wal_level, retention) is reported as ok, with the fact.
 */
export interface Check {
  /** A stable name, for monitoring: `xmin_horizon`, `triggers:public.orders`. */
  readonly check: string;
  readonly ok: boolean;
  readonly detail: string;
  /** What to do; null when there is nothing to. */
  readonly fix: string | null;
}

export interface DiagnoseOptions {
  /** The daemon's query pool (PGFEED_POOL_SIZE), which max_connections must leave room for. */
  readonly poolSize: number;
  /** How long the horizon may be held before it is a problem (PGFEED_HORIZON_STALL_MS). */
  readonly horizonStallMs: number;
  /** How long a NOTIFY may take to reach a LISTEN on another connection. */
  readonly notifyTimeoutMs: number;
  /** A second connection to the same database, for the LISTEN side of the round trip. */
  open(): Promise<pg.Client>;
}

const ok = (check: string, detail: string): Check => ({ check, ok: true, detail, fix: null });
const bad = (check: string, detail: string, fix: string): Check => ({ check, ok: false, detail, fix });

/** `42 s`, `3 min 5 s`, `2 h 10 min`: ages a person reads at a glance. */
export function formatAge(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

async function serverVersion(db: pg.Client): Promise<Check> {
  const { rows } = await db.query<{ num: number; version: string; xid8: boolean }>(
    `SELECT current_setting('server_version_num')::int AS num, current_setting('server_version') AS version, to_regtype('xid8') IS NOT NULL AS xid8`,
  );
  const { num, version, xid8 } = rows[0];
  if (num >= 130000 && xid8) return ok('server_version', `PostgreSQL ${version}, with xid8 and pg_current_xact_id()`);
  return bad('server_version', `PostgreSQL ${version} has no xid8 type (added in PostgreSQL 13), which delivery order is built on`, 'upgrade to PostgreSQL 13 or later');
}

async function walLevel(db: pg.Client): Promise<Check> {
  const { rows } = await db.query<{ level: string }>(`SELECT current_setting('wal_level') AS level`);
  return ok('wal_level', `${rows[0].level}: pgfeed captures with triggers, not logical decoding, so any level works`);
}

async function connections(db: pg.Client, poolSize: number): Promise<Check> {
  const { rows } = await db.query<{ max: number; reserved: number; used: number }>(
    `SELECT current_setting('max_connections')::int AS max,
            current_setting('superuser_reserved_connections')::int + coalesce(current_setting('reserved_connections', true)::int, 0) AS reserved,
            (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())::int AS used`,
  );
  const { max, reserved, used } = rows[0];
  const free = max - reserved - used;
  const need = poolSize + 1;
  const detail = `${free} of max_connections ${max} free (${used} in use, ${reserved} reserved); each daemon needs ${need}: its pool of ${poolSize} (PGFEED_POOL_SIZE) and one for LISTEN`;
  if (free >= need) return ok('max_connections', detail);
  return bad('max_connections', detail, 'raise max_connections (a restart), lower PGFEED_POOL_SIZE, or close idle connections of other clients');
}

/**
 * A LISTEN on a second connection, and a NOTIFY on this one. Through a
 * transaction-pooling PgBouncer the LISTEN lands on a server connection
 * that goes back to the pool when the statement ends, so the notification
 * never reaches the listening client: the timeout is the finding.
 */
async function notifyRoundTrip(db: pg.Client, o: DiagnoseOptions): Promise<Check> {
  const channel = `pgfeed_doctor_${randomBytes(6).toString('hex')}`;
  const token = randomBytes(8).toString('hex');
  let listener: pg.Client | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    listener = await o.open();
    const l = listener;
    const heard = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), o.notifyTimeoutMs);
      l.on('notification', (n) => n.channel === channel && n.payload === token && resolve(true));
    });
    await l.query(`LISTEN ${channel}`);
    await db.query('SELECT pg_notify($1, $2)', [channel, token]);
    if (await heard) return ok('listen_notify', `a NOTIFY on one connection reached a LISTEN on another: no transaction pooler is in between`);
    return bad(
      'listen_notify',
      `a NOTIFY on one connection did not reach a LISTEN on another within ${o.notifyTimeoutMs} ms: the connection goes through a transaction-pooling PgBouncer (or another pooler), where LISTEN cannot work; pgfeed would find changes only by its safety poll`,
      'point DATABASE_URL at Postgres itself, or at a PgBouncer with pool_mode = session',
    );
  } catch (err) {
    return bad('listen_notify', `LISTEN/NOTIFY failed: ${(err as Error).message}`, 'point DATABASE_URL at Postgres itself, or at a PgBouncer with pool_mode = session');
  } finally {
    clearTimeout(timer);
    await listener?.end().catch(() => {});
  }
}

async function notificationQueue(db: pg.Client): Promise<Check> {
  const { rows } = await db.query<{ usage: number }>('SELECT pg_notification_queue_usage() AS usage');
  const detail = `${(rows[0].usage * 100).toFixed(1)}% of the NOTIFY queue in use`;
  if (rows[0].usage < 0.5) return ok('notification_queue', detail);
  return bad(
    'notification_queue',
    `${detail}: a listening session is not reading its notifications, or sits in a long transaction; when the queue is full, every commit that notifies (every tracked write) fails`,
    'find the listening backend that is idle in transaction or stuck in pg_stat_activity and end it (pg_terminate_backend)',
  );
}

async function horizon(db: pg.Client, stallMs: number): Promise<Check> {
  const blocker = await findBlocker(db);
  if (!blocker) return ok('xmin_horizon', 'no transaction holds an xid: the horizon is current');
  const age = formatAge(blocker.age_ms);
  if (blocker.age_ms < stallMs) return ok('xmin_horizon', `the oldest transaction with an xid is ${age} old, below PGFEED_HORIZON_STALL_MS (${formatAge(stallMs)})`);
  if (blocker.pid === null) {
    return bad(
      'xmin_horizon',
      `the prepared transaction ${blocker.prepared_gid} has held the xmin horizon for ${age}: rows committed since wait behind it`,
      `COMMIT PREPARED or ROLLBACK PREPARED '${blocker.prepared_gid}'`,
    );
  }
  const { rows } = await db.query<{ query_start: Date | null }>('SELECT query_start FROM pg_stat_activity WHERE pid = $1', [blocker.pid]);
  const started = rows[0]?.query_start ? rows[0].query_start.toISOString() : 'unknown';
  return bad(
    'xmin_horizon',
    `pid ${blocker.pid} (application ${JSON.stringify(blocker.application ?? '')}, state ${blocker.state ?? 'unknown'}, query start ${started}) has held the xmin horizon for ${age}: rows committed since wait behind it`,
    `end that transaction: COMMIT or ROLLBACK in its session, or SELECT pg_terminate_backend(${blocker.pid})`,
  );
}

/** The migration level, or null (and a failed check) when the database has no pgfeed schema. */
async function migrations(db: pg.Client): Promise<{ check: Check; migrated: boolean }> {
  const known = await loadMigrations();
  const newest = known.at(-1)?.id ?? 0;
  const { rows: has } = await db.query<{ migrated: boolean }>(`SELECT to_regclass('pgfeed.migrations') IS NOT NULL AS migrated`);
  if (!has[0].migrated) return { check: bad('migrations', 'the database has no pgfeed schema', 'run pgfeed migrate (serve also migrates at start-up)'), migrated: false };
  const { rows } = await db.query<{ id: number }>('SELECT id FROM pgfeed.migrations');
  const done = new Set(rows.map((r) => r.id));
  const level = Math.max(0, ...done);
  const pending = known.filter((m) => !done.has(m.id)).map((m) => m.name);
  if (level > newest) {
    return { check: bad('migrations', `the database is at migration ${level}; this pgfeed knows up to ${newest}`, 'upgrade pgfeed: a newer one migrated this database'), migrated: true };
  }
  if (pending.length) {
    return { check: bad('migrations', `the database is at migration ${level}; this pgfeed has ${newest} (pending: ${pending.join(', ')})`, 'run pgfeed migrate'), migrated: true };
  }
  return { check: ok('migrations', `at migration ${level}, the newest this pgfeed has`), migrated: true };
}

async function changeLog(db: pg.Client): Promise<Check> {
  const { rows } = await db.query<{ size: string; estimate: number; oldest_seq: string | null; oldest_at: Date | null }>(
    `SELECT pg_size_pretty(pg_total_relation_size(c.oid)) AS size, c.reltuples::float8 AS estimate, o.seq::text AS oldest_seq, o.created_at AS oldest_at
     FROM pg_class c
     LEFT JOIN LATERAL (SELECT seq, created_at FROM pgfeed.change_log ORDER BY seq LIMIT 1) o ON true
     WHERE c.oid = 'pgfeed.change_log'::regclass`,
  );
  const { size, estimate, oldest_seq, oldest_at } = rows[0];
  // reltuples is -1 (0 before PostgreSQL 14) until the table is first vacuumed or analyzed.
  const count = estimate >= 0 ? `about ${Math.round(estimate)} rows (pg_class estimate)` : 'row count not estimated until the table is analyzed';
  const oldest = oldest_seq === null ? 'no rows' : `the oldest seq ${oldest_seq}, from ${oldest_at!.toISOString()}`;
  return ok('change_log', `${size}, ${count}, ${oldest}`);
}

/** The rules pgfeed.prune() reads, and how far pruning got. Never a failure: keeping every event is a choice. */
async function retention(db: pg.Client): Promise<Check> {
  const { rows } = await db.query<{ max_age: string | null; max_rows: string | null; pruned: string; through: string }>(
    `SELECT r.max_age::text AS max_age, r.max_rows::text AS max_rows, r.pruned_xid::text || ':' || r.pruned_seq AS pruned, s.pruned_through::text AS through
     FROM pgfeed.retention r, pgfeed.settings s`,
  );
  const r = rows[0];
  const rules = [r.max_age && `older than ${r.max_age}`, r.max_rows && `once ${r.max_rows} newer seqs exist`].filter(Boolean);
  if (!rules.length) return ok('retention', 'not configured: change_log keeps every event (PGFEED_RETENTION, PGFEED_RETENTION_ROWS)');
  return ok('retention', `events are pruned ${rules.join(' or ')}; pruned up to position ${r.pruned}, seqs up to ${r.through}`);
}

const TRIGGERS = ['pgfeed_capture_insert', 'pgfeed_capture_update', 'pgfeed_capture_delete', 'pgfeed_capture_truncate'];

/** How to track the table again, which re-creates its triggers, enabled. */
function trackAgain(t: TrackedRow): string {
  return `pgfeed track '${t.table}' ${t.project_column !== null ? `--project-column '${t.project_column}'` : `--project '${t.project}'`}`;
}

async function projectIndex(db: pg.Client, t: TrackedRow, column: string): Promise<Check> {
  const name = `project_index:${t.table}`;
  const { rows } = await db.query<{ has_column: boolean; quoted: string; index: string | null }>(
    `SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = $1 AND attname = $2 AND attnum > 0 AND NOT attisdropped) AS has_column,
            quote_ident($2) AS quoted,
            (SELECT i.indexrelid::regclass::text
             FROM pg_index i
             JOIN pg_class ic ON ic.oid = i.indexrelid
             JOIN pg_am am ON am.oid = ic.relam
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
             WHERE i.indrelid = $1 AND a.attname = $2 AND am.amname = 'btree' AND i.indpred IS NULL AND i.indisvalid
             ORDER BY 1 LIMIT 1) AS index`,
    [t.oid, column],
  );
  const { has_column, quoted, index } = rows[0];
  if (!has_column) {
    return bad(name, `${t.table} has no column ${quoted} any more: every write to it fails, its rows having no project`, `pgfeed track '${t.table}' --project-column <its new name>, or --project P`);
  }
  if (index) return ok(name, `${index} starts with the project column ${quoted}`);
  return bad(
    name,
    `no valid btree index of ${t.table} starts with its project column ${quoted}: a TRUNCATE reads every row to find the projects it empties`,
    `CREATE INDEX CONCURRENTLY ON ${t.table} (${quoted})`,
  );
}

async function triggers(db: pg.Client, t: TrackedRow): Promise<Check> {
  const name = `triggers:${t.table}`;
  const { rows } = await db.query<{ tgname: string; tgenabled: string }>(
    'SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = $1 AND NOT tgisinternal AND tgname = ANY($2)',
    [t.oid, TRIGGERS],
  );
  const state = new Map(rows.map((r) => [r.tgname, r.tgenabled]));
  const problems = TRIGGERS.flatMap((tg) => {
    const s = state.get(tg);
    if (s === undefined) return [`${tg} is missing`];
    if (s === 'D') return [`${tg} is disabled`];
    // ENABLE REPLICA: it fires only in sessions with session_replication_role = replica.
    if (s === 'R') return [`${tg} fires only in replica sessions`];
    return [];
  });
  if (!problems.length) return ok(name, 'its four capture triggers are in place and enabled');
  return bad(name, `${problems.join(', ')}: those changes of ${t.table} are not captured`, `${trackAgain(t)} (it re-creates the four triggers, enabled)`);
}

async function trackedTables(db: pg.Client): Promise<Check[]> {
  const tracked = await listTracked(db);
  const out: Check[] = [ok('tracked_tables', tracked.length ? `${tracked.length} tracked` : 'no table is tracked (pgfeed track <table> starts capture)')];
  for (const t of tracked) {
    if (!t.exists) {
      out.push(bad(`tracked:${t.table}`, `pgfeed.tracked names table oid ${t.oid}, which no longer exists`, `DELETE FROM pgfeed.tracked WHERE tbl = ${t.oid}`));
      continue;
    }
    if (t.project_column !== null) out.push(await projectIndex(db, t, t.project_column));
    out.push(await triggers(db, t));
  }
  return out;
}

/** A check whose query failed (a missing privilege, a timeout) is a failed check, not the end of the others. */
async function guarded<T>(name: string, run: () => Promise<T>): Promise<T | Check> {
  try {
    return await run();
  } catch (err) {
    return bad(name, `could not be checked: ${(err as Error).message}`, "the error says why; doctor's role must be able to read pg_catalog, pg_stat_activity and the pgfeed schema");
  }
}

/** Every check but the connection, which the caller made. */
export async function diagnose(db: pg.Client, o: DiagnoseOptions): Promise<Check[]> {
  const checks = [
    await guarded('server_version', () => serverVersion(db)),
    await guarded('wal_level', () => walLevel(db)),
    await guarded('max_connections', () => connections(db, o.poolSize)),
    await guarded('listen_notify', () => notifyRoundTrip(db, o)),
    await guarded('notification_queue', () => notificationQueue(db)),
    await guarded('xmin_horizon', () => horizon(db, o.horizonStallMs)),
  ];
  const m = await guarded('migrations', () => migrations(db));
  if ('ok' in m) return [...checks, m];
  checks.push(m.check);
  if (m.migrated) checks.push(await guarded('change_log', () => changeLog(db)), await guarded('retention', () => retention(db)), ...[await guarded('tracked_tables', () => trackedTables(db))].flat());
  return checks;
}
