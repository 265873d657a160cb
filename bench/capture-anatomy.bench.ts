// Capture anatomy: what each part of pgfeed's capture costs a bulk insert,
// found by removing it. Each variant is a copy of pgfeed.change_log with one
// part taken away, written by a copy of pgfeed.capture() (taken from the
// database, its NOTIFY removed) from a table of its own; beside them the
// untracked table and the hand-written audit trigger of capture.bench.ts
// (the peer). Each round inserts 10,000 rows in one statement into every
// table in rotating order, after a TRUNCATE and a CHECKPOINT, on a Postgres
// with its default durability. Figures: rows/s (median of per-round ratios to
// the peer) and the writing backend's CPU per row (/proc/<pid>/schedstat).
//
//   npm run bench:capture-anatomy        (ROWS=10000 REPS=5 by default)
import pg from 'pg';
import { migrate } from '../src/db/migrate.js';
import { startScratchPostgres } from '../test/helpers/scratch-postgres.js';
import { median } from './capture.bench.js';
import { runMs } from './lib/proc-stats.js';
import { isMain } from './lib/runner.js';

interface Variant {
  name: string;
  /** Index column lists of change_log to drop from the copy. */
  dropIndexes: string[];
  checks: boolean;
}

const VARIANTS: Variant[] = [
  { name: 'full', dropIndexes: [], checks: true },
  { name: 'no_created_at_idx', dropIndexes: ['created_at'], checks: true },
  { name: 'no_project_xid_seq_idx', dropIndexes: ['project, xid, seq'], checks: true },
  { name: 'no_xid_seq_idx', dropIndexes: ['xid, seq'], checks: true },
  { name: 'no_checks', dropIndexes: [], checks: false },
  { name: 'pk_only', dropIndexes: ['created_at', 'project, xid, seq', 'xid, seq'], checks: true },
  { name: 'pk_only_no_checks', dropIndexes: ['created_at', 'project, xid, seq', 'xid, seq'], checks: false },
];

const COLUMNS = '(id bigserial PRIMARY KEY, project text NOT NULL, kind text NOT NULL, amount int NOT NULL, payload jsonb NOT NULL)';

async function setup(c: pg.Client): Promise<string[]> {
  await c.query(`CREATE SCHEMA anatomy;
    CREATE TABLE anatomy.t_untracked ${COLUMNS};
    CREATE TABLE anatomy.t_peer ${COLUMNS};
    CREATE TABLE anatomy.audit (id bigserial PRIMARY KEY, table_name text NOT NULL, op text NOT NULL, changed_at timestamptz NOT NULL DEFAULT now(), row_data jsonb);
    CREATE FUNCTION anatomy.audit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO anatomy.audit (table_name, op, row_data) SELECT TG_TABLE_NAME, TG_OP, to_jsonb(n) FROM audit_new n;
      RETURN NULL;
    END $$;
    CREATE TRIGGER audit AFTER INSERT ON anatomy.t_peer REFERENCING NEW TABLE AS audit_new FOR EACH STATEMENT EXECUTE FUNCTION anatomy.audit();`);
  const def: string = (await c.query(`SELECT pg_get_functiondef('pgfeed.capture()'::regprocedure) AS d`)).rows[0].d;
  for (const v of VARIANTS) {
    const log = `anatomy.log_${v.name}`;
    await c.query(`CREATE TABLE ${log} (LIKE pgfeed.change_log INCLUDING DEFAULTS ${v.checks ? 'INCLUDING CONSTRAINTS' : ''} INCLUDING INDEXES)`);
    const { rows } = await c.query<{ indexname: string; indexdef: string }>(`SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'anatomy' AND tablename = $1`, [`log_${v.name}`]);
    for (const cols of v.dropIndexes) {
      const i = rows.find((x) => x.indexdef.endsWith(`(${cols})`));
      if (!i) throw new Error(`bench/capture-anatomy.bench.ts: change_log has no index on (${cols}); update VARIANTS to match sql/`);
      await c.query(`DROP INDEX anatomy.${pg.escapeIdentifier(i.indexname)}`);
    }
    const body = def
      .replace('FUNCTION pgfeed.capture()', `FUNCTION anatomy.capture_${v.name}()`)
      .replaceAll('INTO pgfeed.change_log ', `INTO ${log} `)
      .replace(/PERFORM pg_notify\([^;]*;/, 'NULL;');
    if (body.includes('pgfeed.change_log ') || body.includes('pg_notify')) throw new Error('bench/capture-anatomy.bench.ts: cannot retarget pgfeed.capture(); update it to match sql/');
    await c.query(body);
    await c.query(`CREATE TABLE anatomy.t_${v.name} ${COLUMNS};
      CREATE TRIGGER capture AFTER INSERT ON anatomy.t_${v.name} REFERENCING NEW TABLE AS pgfeed_new
        FOR EACH STATEMENT EXECUTE FUNCTION anatomy.capture_${v.name}('t', 'project', '')`);
  }
  return ['untracked', 'peer', ...VARIANTS.map((v) => v.name)];
}

const insert = (t: string, n: number) => `INSERT INTO anatomy.t_${t} (project, kind, amount, payload)
  SELECT 'tenant-' || (g % 8), 'order', g, jsonb_build_object('sku', 'A-' || g, 'qty', g % 5, 'note', 'bulk row') FROM generate_series(1, ${n}) g`;

export async function runAnatomy(rows = 10_000, reps = 5): Promise<Record<string, { rows_per_s: number; over_peer: number; cpu_us_per_row: number }>> {
  const server = await startScratchPostgres({ prefix: 'pgfeed-bench-anatomy-', flags: ['-c', 'max_connections=100'] });
  try {
    await migrate(server.url());
    const c = new pg.Client({ connectionString: server.url(), application_name: 'pgfeed:bench:anatomy' });
    await c.connect();
    try {
      const tables = await setup(c);
      const pid = (await c.query('SELECT pg_backend_pid() AS p')).rows[0].p as number;
      const truncate = `TRUNCATE anatomy.audit, ${tables.map((t) => `anatomy.t_${t}`).join(', ')}, ${VARIANTS.map((v) => `anatomy.log_${v.name}`).join(', ')}`;
      for (const t of tables) await c.query(insert(t, 1000));
      const per: Record<string, { rate: number[]; cpu: number[] }> = Object.fromEntries(tables.map((t) => [t, { rate: [], cpu: [] }]));
      for (let r = 0; r < reps; r++) {
        for (const t of tables.map((_, i) => tables[(i + r) % tables.length])) {
          await c.query(truncate);
          await c.query('CHECKPOINT');
          const cpu0 = runMs(pid);
          const t0 = performance.now();
          await c.query(insert(t, rows));
          per[t].rate.push(rows / ((performance.now() - t0) / 1000));
          per[t].cpu.push(((runMs(pid) - cpu0) * 1000) / rows);
        }
      }
      return Object.fromEntries(tables.map((t) => [t, {
        rows_per_s: Math.round(median(per[t].rate)),
        over_peer: Number(median(per[t].rate.map((x, i) => x / per.peer.rate[i])).toFixed(3)),
        cpu_us_per_row: Number(median(per[t].cpu).toFixed(2)),
      }]));
    } finally {
      await c.end();
    }
  } finally {
    await server.stop();
  }
}

if (isMain(import.meta.url)) {
  const result = await runAnatomy(Number(process.env.ROWS ?? 10_000), Number(process.env.REPS ?? 5));
  for (const [t, r] of Object.entries(result)) {
    console.log(`${t.padEnd(24)} ${String(r.rows_per_s).padStart(8)} rows/s  ${r.over_peer.toFixed(2)}x peer  ${r.cpu_us_per_row.toFixed(1)} us/row`);
  }
  console.log(JSON.stringify({ anatomy: result }));
}
