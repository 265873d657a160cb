// Capture (write path): what tracking a table costs the transactions that
// write to it. Four tables of identical shape are written in turn:
//
//   untracked   no trigger: the baseline
//   statement   pgfeed.track(): the statement-level capture of sql/001
//   row         the alternative design, defined here only: a per-row plpgsql
//               trigger that writes one change_log row, plus a statement-level
//               trigger that notifies once
//   silent      pgfeed.capture() with its pg_notify removed, defined here only:
//               it shows what the NOTIFY itself costs, apart from the log write
//               (what writers pay with PGFEED_WAKE=poll)
//   peer        the common hand-written audit trigger, defined here only: a
//               statement-level AFTER trigger with a transition table writing
//               one jsonb row per changed row into a table with one index
//
// Three workloads: sequential single-row transactions on one connection,
// 10,000-row single-statement inserts, and 16 concurrent single-row writers.
// Designs are interleaved round by round, in rotating order, and each ratio
// is the median of the per-round ratios, so drift (checkpoints, autovacuum,
// a noisy neighbour) hits all designs alike.
//
//   npm run bench:capture
//
// Durability is Postgres' default (fsync on, synchronous_commit on): a
// commit waits for its WAL flush, as it does in production.
import { execFileSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { migrate } from '../src/db/migrate.js';
import { startScratchPostgres } from '../test/helpers/scratch-postgres.js';
import { sleep } from '../test/helpers/wait.js';

export const DESIGNS = ['untracked', 'statement', 'row', 'silent', 'peer'] as const;
export type Design = (typeof DESIGNS)[number];

/** Throughput ratio tracked / untracked the statement-level design must reach. */
export const TARGETS = { single_row: 0.8, bulk: 0.5, concurrent: 0.7 } as const;

export interface CaptureOptions {
  /** A superuser URL of a running server. Default: start an embedded Postgres. */
  adminUrl?: string;
  /** Sequential single-row transactions per design, split over `rounds`. */
  singleRowTx?: number;
  rounds?: number;
  bulkRows?: number;
  bulkReps?: number;
  writers?: number;
  /** Length of one concurrent segment; there are `concurrentRounds` per design. */
  concurrentMs?: number;
  concurrentRounds?: number;
  log?: (line: string) => void;
}

export interface Ratios {
  single_row_ratio: number;
  bulk_ratio: number;
  concurrent_ratio: number;
}

export interface CaptureResult extends Ratios {
  /** The alternative design, measured in the same run. */
  row_level: Ratios;
  /** Statement-level capture without its NOTIFY: not a design, a measurement of the NOTIFY's share. */
  without_notify: Ratios;
  /** The hand-written audit trigger, against untracked. */
  peer: Ratios;
  /** pgfeed's capture as writers pay it with PGFEED_WAKE=poll (no NOTIFY) over the peer's: median of per-round ratios. */
  peer_ratio: { single_row: number; bulk: number; concurrent: number };
  /** The same with the NOTIFY of PGFEED_WAKE=notify. */
  peer_ratio_notify: { single_row: number; bulk: number; concurrent: number };
  /** Medians: transactions/s for single_row and concurrent, rows/s for bulk. */
  throughput: Record<Workload, Record<Design, number>>;
  /**
   * CPU time of the writing backends and the listening one, in microseconds
   * per transaction (per row for bulk), over all rounds. Unlike throughput it
   * barely moves when other processes compete for the CPUs. Null unless the
   * bench started the server itself (it reads /proc).
   */
  server_cpu_us: Record<Workload, Record<Design, number>> | null;
  server: Record<string, string>;
  /** NOTIFYs a listener received during the statement-level bulk inserts, and how many statements those were. */
  notifications: { received: number; statements: number };
}

export type Workload = 'single_row' | 'bulk' | 'concurrent';

const TABLE: Record<Design, string> = { untracked: 'bench_untracked', statement: 'bench_statement', row: 'bench_row', silent: 'bench_silent', peer: 'bench_peer' };

const SETUP_SQL = `
DROP SCHEMA IF EXISTS pgfeed_bench CASCADE;
CREATE SCHEMA pgfeed_bench;

-- Per-row capture, behaviourally equal to pgfeed.capture() for one row: the
-- same change_log columns and data shapes, the same NULL-project failure.
-- The last seq is kept in a transaction-local setting for the notifier below.
CREATE FUNCTION pgfeed_bench.capture_row() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  r jsonb;
  s bigint;
BEGIN
  IF TG_OP = 'INSERT' THEN
    r := to_jsonb(NEW);
  ELSIF TG_OP = 'DELETE' THEN
    r := to_jsonb(OLD);
  ELSE
    r := jsonb_build_object('old', to_jsonb(OLD), 'new', to_jsonb(NEW));
  END IF;
  INSERT INTO pgfeed.change_log (project, type, op, tbl, data)
  VALUES (coalesce(nullif(TG_ARGV[2], ''),
                   CASE WHEN TG_OP = 'UPDATE' THEN r -> 'new' ELSE r END ->> TG_ARGV[1],
                   pgfeed.null_project(format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME), TG_ARGV[1])),
          TG_ARGV[0] || '.' || lower(TG_OP), lower(TG_OP), format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME), r)
  RETURNING seq INTO s;
  PERFORM set_config('pgfeed_bench.last_seq', s::text, true);
  RETURN NULL;
END $$;

-- Once per statement, and only if a row was captured: one NOTIFY with the last seq.
CREATE FUNCTION pgfeed_bench.notify_statement() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  s text := current_setting('pgfeed_bench.last_seq', true);
BEGIN
  IF s <> '' THEN
    PERFORM set_config('pgfeed_bench.last_seq', '', true);
    PERFORM pg_notify((SELECT st.channel FROM pgfeed.settings st), s);
  END IF;
  RETURN NULL;
END $$;

-- The peer: the audit trigger teams write by hand. One jsonb row per
-- inserted row, a statement trigger with a transition table, one index.
CREATE TABLE pgfeed_bench.audit (
  id         bigserial   PRIMARY KEY,
  table_name text        NOT NULL,
  op         text        NOT NULL,
  changed_at timestamptz NOT NULL DEFAULT now(),
  row_data   jsonb
);
CREATE FUNCTION pgfeed_bench.audit() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO pgfeed_bench.audit (table_name, op, row_data)
  SELECT TG_TABLE_NAME, TG_OP, to_jsonb(n) FROM audit_new n;
  RETURN NULL;
END $$;
` + DESIGNS.map((d) => `
CREATE TABLE ${TABLE[d]} (
  id      bigserial PRIMARY KEY,
  project text      NOT NULL,
  kind    text      NOT NULL,
  amount  int       NOT NULL,
  payload jsonb     NOT NULL
);`).join('\n') + `
SELECT pgfeed.track('${TABLE.statement}', 'project');
CREATE TRIGGER capture_row AFTER INSERT OR UPDATE OR DELETE ON ${TABLE.row}
  FOR EACH ROW EXECUTE FUNCTION pgfeed_bench.capture_row('${TABLE.row}', 'project', '');
CREATE TRIGGER notify_statement AFTER INSERT OR UPDATE OR DELETE ON ${TABLE.row}
  FOR EACH STATEMENT EXECUTE FUNCTION pgfeed_bench.notify_statement();
CREATE TRIGGER audit AFTER INSERT ON ${TABLE.peer} REFERENCING NEW TABLE AS audit_new
  FOR EACH STATEMENT EXECUTE FUNCTION pgfeed_bench.audit();
`;

/**
 * pgfeed.capture() exactly as migrated, minus its pg_notify: what writers pay
 * with PGFEED_NOTIFY=false. Taken from the
 * database rather than copied, so it can never drift from sql/.
 */
async function silentCaptureSql(c: pg.Client): Promise<string> {
  const def: string = (await c.query(`SELECT pg_get_functiondef('pgfeed.capture()'::regprocedure) AS d`)).rows[0].d;
  const silent = def
    .replace(/FUNCTION pgfeed\.capture\(\)/, 'FUNCTION pgfeed_bench.capture_silent()')
    .replace(/PERFORM pg_notify\([^;]*;/, 'NULL;');
  if (!silent.includes('pgfeed_bench.capture_silent') || silent.includes('pg_notify')) {
    throw new Error('bench/capture.bench.ts: cannot derive a NOTIFY-free copy of pgfeed.capture(); update silentCaptureSql() to match sql/');
  }
  return `${silent};
    CREATE TRIGGER capture_silent AFTER INSERT ON ${TABLE.silent} REFERENCING NEW TABLE AS pgfeed_new
      FOR EACH STATEMENT EXECUTE FUNCTION pgfeed_bench.capture_silent('${TABLE.silent}', 'project', '');`;
}

const insertOne = (d: Design): pg.QueryConfig => ({
  name: `insert_one_${d}`,
  text: `INSERT INTO ${TABLE[d]} (project, kind, amount, payload) VALUES ($1, $2, $3, $4)`,
});

const insertBulk = (d: Design, rows: number) => `
  INSERT INTO ${TABLE[d]} (project, kind, amount, payload)
  SELECT 'tenant-' || (g % 8), 'order', g, jsonb_build_object('sku', 'A-' || g, 'qty', g % 5, 'note', 'bulk row')
  FROM generate_series(1, ${rows}) g`;

function rowValues(i: number): unknown[] {
  return [`tenant-${i % 8}`, 'order', i, { sku: `A-${i}`, qty: i % 5, note: 'single row' }];
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Round r runs the designs in an order rotated by r. */
function rotated(r: number): Design[] {
  return DESIGNS.map((_, i) => DESIGNS[(i + r) % DESIGNS.length]);
}


interface Server {
  adminUrl: string;
  stop(): Promise<void>;
}

/** A throwaway cluster in a temp dir, with Postgres' default durability settings. */
async function startEmbedded(): Promise<Server> {
  const server = await startScratchPostgres({ prefix: 'pgfeed-bench-pg-', flags: ['-c', 'max_connections=100'] });
  return { adminUrl: server.url(), stop: () => server.stop() };
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })) || 100;
  } catch {
    return 100;
  }
})();

/** User plus system CPU milliseconds the given server processes have used so far. */
function processCpuMs(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
  }
  return (ticks * 1000) / CLK_TCK;
}

async function backendPid(c: pg.Client): Promise<number> {
  return (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

async function connect(url: string, name: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, application_name: `pgfeed:bench:${name}` });
  await c.connect();
  return c;
}

/** Returns transactions per second. */
async function singleRow(c: pg.Client, d: Design, n: number, offset: number): Promise<number> {
  const q = insertOne(d);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    await c.query('BEGIN');
    await c.query({ ...q, values: rowValues(offset + i) });
    await c.query('COMMIT');
  }
  return n / ((performance.now() - t0) / 1000);
}

/** Returns rows per second of one INSERT ... SELECT statement. */
async function bulk(c: pg.Client, d: Design, rows: number): Promise<number> {
  const t0 = performance.now();
  await c.query(insertBulk(d, rows));
  return rows / ((performance.now() - t0) / 1000);
}

/** Every writer commits single-row transactions until the deadline; returns transactions per second. */
async function concurrent(writers: pg.Client[], d: Design, ms: number): Promise<{ rate: number; commits: number }> {
  const q = insertOne(d);
  let commits = 0;
  const t0 = performance.now();
  const deadline = t0 + ms;
  await Promise.all(
    writers.map(async (c, w) => {
      for (let i = 0; performance.now() < deadline; i++) {
        await c.query('BEGIN');
        await c.query({ ...q, values: rowValues(w * 1_000_000 + i) });
        await c.query('COMMIT');
        commits++;
      }
    }),
  );
  return { rate: commits / ((performance.now() - t0) / 1000), commits };
}

export async function runCapture(opts: CaptureOptions = {}): Promise<CaptureResult> {
  const o = {
    singleRowTx: 3000,
    rounds: 6,
    bulkRows: 10_000,
    bulkReps: 7,
    writers: 16,
    concurrentMs: 4000,
    concurrentRounds: 3,
    log: (line: string) => console.log(line),
    ...opts,
  };
  const embedded = o.adminUrl ? null : await startEmbedded();
  const adminUrl = o.adminUrl ?? embedded!.adminUrl;
  const dbName = `pgfeed_bench_capture_${process.pid}`;
  const admin = await connect(adminUrl, 'admin');
  const clients: pg.Client[] = [];
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${dbName}`);
    await admin.query(`CREATE DATABASE ${dbName}`);
    const url = withDatabase(adminUrl, dbName);
    await migrate(url);

    const main = await connect(url, 'main');
    clients.push(main);
    await main.query(SETUP_SQL);
    await main.query(await silentCaptureSql(main));
    const server: Record<string, string> = {};
    for (const key of ['server_version', 'fsync', 'synchronous_commit', 'wal_sync_method', 'full_page_writes', 'shared_buffers', 'max_wal_size']) {
      server[key] = (await main.query(`SHOW ${key}`)).rows[0][key];
    }
    const channel = (await main.query('SELECT pgfeed.channel() AS c')).rows[0].c as string;

    // The daemon's LISTEN connection is part of production, so one is here too.
    const listener = await connect(url, 'listen');
    clients.push(listener);
    let received = 0;
    listener.on('notification', () => received++);
    await listener.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    // Each segment starts from an empty log, right after a checkpoint, so
    // full-page writes and table size are the same for every design.
    const reset = async () => {
      await main.query(`TRUNCATE pgfeed.change_log, pgfeed_bench.audit, ${DESIGNS.map((d) => TABLE[d]).join(', ')}`);
      await main.query('CHECKPOINT');
    };
    const ratios = (per: Record<Design, number>[], d: Design, over: Design = 'untracked') => median(per.map((r) => r[d] / r[over]));
    const medians = (per: Record<Design, number>[]) =>
      Object.fromEntries(DESIGNS.map((d) => [d, median(per.map((r) => r[d]))])) as Record<Design, number>;

    o.log(`# capture: PostgreSQL ${server.server_version}, fsync=${server.fsync}, synchronous_commit=${server.synchronous_commit}, ${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);

    // Server CPU is read from /proc, so only for a server started here.
    const listenerPid = await backendPid(listener);
    const mainPids = [await backendPid(main)];
    const cpuMs = (pids: number[]) => (embedded ? processCpuMs([...pids, listenerPid]) : 0);
    const cpuTotals = Object.fromEntries(
      (['single_row', 'bulk', 'concurrent'] as const).map((w) => [w, Object.fromEntries(DESIGNS.map((d) => [d, { ms: 0, units: 0 }]))]),
    ) as Record<Workload, Record<Design, { ms: number; units: number }>>;
    const account = (w: Workload, d: Design, ms: number, units: number) => {
      cpuTotals[w][d].ms += ms;
      cpuTotals[w][d].units += units;
    };

    // Warm-up: plans, caches and the notify queue, outside any measurement.
    for (const d of DESIGNS) {
      await singleRow(main, d, 200, 0);
      await bulk(main, d, 1000);
    }

    const perSingle: Record<Design, number>[] = [];
    const perRound = Math.ceil(o.singleRowTx / o.rounds);
    for (let r = 0; r < o.rounds; r++) {
      const row = {} as Record<Design, number>;
      for (const d of rotated(r)) {
        await reset();
        const cpu0 = cpuMs(mainPids);
        row[d] = await singleRow(main, d, perRound, r * perRound);
        account('single_row', d, cpuMs(mainPids) - cpu0, perRound);
      }
      perSingle.push(row);
    }
    o.log(`# single-row: ${o.rounds} rounds x ${perRound} transactions per design`);

    // Bulk also checks the capture did its job: one NOTIFY per statement.
    const notifications = { received: 0, statements: 0 };
    const perBulk: Record<Design, number>[] = [];
    for (let r = 0; r < o.bulkReps; r++) {
      const row = {} as Record<Design, number>;
      for (const d of rotated(r)) {
        await reset();
        const before = received;
        const cpu0 = cpuMs(mainPids);
        row[d] = await bulk(main, d, o.bulkRows);
        account('bulk', d, cpuMs(mainPids) - cpu0, o.bulkRows);
        await main.query('SELECT 1'); // the notification, if any, arrives before this round trip ends
        await sleep(20);
        if (d === 'statement') {
          notifications.statements++;
          notifications.received += received - before;
        }
      }
      perBulk.push(row);
    }
    o.log(`# bulk: ${o.bulkReps} repetitions of one ${o.bulkRows}-row INSERT ... SELECT per design`);

    for (let w = 0; w < o.writers; w++) clients.push(await connect(url, `writer${w}`));
    const writers = clients.slice(2);
    for (const d of DESIGNS) await concurrent(writers, d, 300);
    const writerPids = await Promise.all(writers.map(backendPid));
    const perConcurrent: Record<Design, number>[] = [];
    for (let r = 0; r < o.concurrentRounds; r++) {
      const row = {} as Record<Design, number>;
      for (const d of rotated(r)) {
        await reset();
        const cpu0 = cpuMs(writerPids);
        const { rate, commits } = await concurrent(writers, d, o.concurrentMs);
        account('concurrent', d, cpuMs(writerPids) - cpu0, commits);
        row[d] = rate;
      }
      perConcurrent.push(row);
    }
    o.log(`# concurrent: ${o.writers} writers, ${o.concurrentRounds} rounds x ${o.concurrentMs} ms per design`);

    return {
      single_row_ratio: ratios(perSingle, 'statement'),
      bulk_ratio: ratios(perBulk, 'statement'),
      concurrent_ratio: ratios(perConcurrent, 'statement'),
      row_level: {
        single_row_ratio: ratios(perSingle, 'row'),
        bulk_ratio: ratios(perBulk, 'row'),
        concurrent_ratio: ratios(perConcurrent, 'row'),
      },
      without_notify: {
        single_row_ratio: ratios(perSingle, 'silent'),
        bulk_ratio: ratios(perBulk, 'silent'),
        concurrent_ratio: ratios(perConcurrent, 'silent'),
      },
      peer: {
        single_row_ratio: ratios(perSingle, 'peer'),
        bulk_ratio: ratios(perBulk, 'peer'),
        concurrent_ratio: ratios(perConcurrent, 'peer'),
      },
      peer_ratio: { single_row: ratios(perSingle, 'silent', 'peer'), bulk: ratios(perBulk, 'silent', 'peer'), concurrent: ratios(perConcurrent, 'silent', 'peer') },
      peer_ratio_notify: { single_row: ratios(perSingle, 'statement', 'peer'), bulk: ratios(perBulk, 'statement', 'peer'), concurrent: ratios(perConcurrent, 'statement', 'peer') },
      throughput: { single_row: medians(perSingle), bulk: medians(perBulk), concurrent: medians(perConcurrent) },
      server_cpu_us: embedded
        ? (Object.fromEntries(
            Object.entries(cpuTotals).map(([w, per]) => [
              w,
              Object.fromEntries(Object.entries(per).map(([d, t]) => [d, (t.ms * 1000) / t.units])),
            ]),
          ) as Record<Workload, Record<Design, number>>)
        : null,
      server,
      notifications,
    };
  } finally {
    for (const c of clients.reverse()) await c.end().catch(() => {});
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => {});
    await admin.end().catch(() => {});
    await embedded?.stop();
  }
}

export function formatCapture(r: CaptureResult): string {
  const x = (v: number) => `${v.toFixed(2)}x`;
  const n = (v: number) => Math.round(v).toLocaleString('en-US');
  const rows: [string, keyof CaptureResult['throughput'], keyof Ratios, number][] = [
    ['single-row tx/s, 1 connection', 'single_row', 'single_row_ratio', TARGETS.single_row],
    ['bulk rows/s, 10k-row statements', 'bulk', 'bulk_ratio', TARGETS.bulk],
    ['single-row tx/s, 16 connections', 'concurrent', 'concurrent_ratio', TARGETS.concurrent],
  ];
  const cell = (v: number, ratio: number) => `${n(v).padStart(8)} ${x(ratio).padStart(6)}`;
  const lines = [
    '',
    `${'workload'.padEnd(34)}${'untracked'.padStart(10)}  ${'statement-level'.padStart(15)}  ${'row-level'.padStart(15)}  ${'no NOTIFY'.padStart(15)}  ${'peer'.padStart(15)}  target`,
    ...rows.map(([label, key, ratio, target]) => {
      const t = r.throughput[key];
      return `${label.padEnd(34)}${n(t.untracked).padStart(10)}  ${cell(t.statement, r[ratio])}  ${cell(t.row, r.row_level[ratio])}  ${cell(t.silent, r.without_notify[ratio])}  ${cell(t.peer, r.peer[ratio])}  >= ${target}x ${r[ratio] >= target ? 'met' : 'MISSED'}`;
    }),
    ...(r.server_cpu_us
      ? [
          '',
          `server CPU, microseconds per${' '.repeat(6)}${'untracked'.padStart(10)}  ${'statement-level'.padStart(15)}  ${'row-level'.padStart(15)}  ${'no NOTIFY'.padStart(15)}  ${'peer'.padStart(15)}`,
          ...rows.map(([label, key]) => {
            const c = r.server_cpu_us![key];
            const unit = key === 'bulk' ? 'row, 10k-row statements' : label.replace(/^single-row tx\/s, /, 'transaction, ');
            const us = (v: number, width = 15) => (v < 100 ? v.toFixed(1) : v.toFixed(0)).padStart(width);
            return `${unit.padEnd(34)}${us(c.untracked, 10)}  ${us(c.statement)}  ${us(c.row)}  ${us(c.silent)}  ${us(c.peer)}`;
          }),
        ]
      : []),
    '',
    `statement-level: single_row_ratio=${r.single_row_ratio.toFixed(3)} bulk_ratio=${r.bulk_ratio.toFixed(3)} concurrent_ratio=${r.concurrent_ratio.toFixed(3)}`,
    `row-level:       single_row_ratio=${r.row_level.single_row_ratio.toFixed(3)} bulk_ratio=${r.row_level.bulk_ratio.toFixed(3)} concurrent_ratio=${r.row_level.concurrent_ratio.toFixed(3)}`,
    `no NOTIFY:       single_row_ratio=${r.without_notify.single_row_ratio.toFixed(3)} bulk_ratio=${r.without_notify.bulk_ratio.toFixed(3)} concurrent_ratio=${r.without_notify.concurrent_ratio.toFixed(3)}`,
    `peer:            single_row_ratio=${r.peer.single_row_ratio.toFixed(3)} bulk_ratio=${r.peer.bulk_ratio.toFixed(3)} concurrent_ratio=${r.peer.concurrent_ratio.toFixed(3)}`,
    `pgfeed/peer:     without NOTIFY (PGFEED_WAKE=poll) single_row=${r.peer_ratio.single_row.toFixed(3)} bulk=${r.peer_ratio.bulk.toFixed(3)} concurrent=${r.peer_ratio.concurrent.toFixed(3)}; with NOTIFY single_row=${r.peer_ratio_notify.single_row.toFixed(3)} bulk=${r.peer_ratio_notify.bulk.toFixed(3)} concurrent=${r.peer_ratio_notify.concurrent.toFixed(3)}`,
    `notifications: ${r.notifications.received} for ${r.notifications.statements} statement-level bulk statements (one each expected)`,
    `server: ${Object.entries(r.server).map(([k, v]) => `${k}=${v}`).join(' ')}; host: ${cpus().length} CPUs, ${Math.round(totalmem() / 2 ** 30)} GiB, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`,
  ];
  return lines.join('\n');
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
if (invokedDirectly) {
  const result = await runCapture();
  console.log(formatCapture(result));
}
