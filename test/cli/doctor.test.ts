// pgfeed doctor against a real database: all well (exit 0), then each
// thing it must find (exit 1), named with what to do.
import pg from 'pg';
import t, { type Test } from 'tap';
import { loadMigrations } from '../../src/db/migrate.js';
import { emptyDatabase, testDatabase } from '../harness/db.js';
import { runCli, type CliResult } from '../helpers/cli.js';

interface Check {
  check: string;
  ok: boolean;
  detail: string;
  fix: string | null;
}

const db = await testDatabase(t);
const env = { DATABASE_URL: db.url };

async function doctor(t: Test, args: string[] = [], url = db.url): Promise<{ r: CliResult; checks: Check[]; by: (name: string) => Check }> {
  const r = await runCli(['doctor', '--json', ...args], { DATABASE_URL: url });
  t.equal(r.stderr, '', 'nothing on stderr');
  const checks = JSON.parse(r.stdout) as Check[];
  const by = (name: string) => {
    const c = checks.find((c) => c.check === name);
    if (!c) throw new Error(`no check ${name} in ${r.stdout}`);
    return c;
  };
  return { r, checks, by };
}

t.test('all well: every check passes, exit 0', async (t) => {
  const { r, checks } = await doctor(t);
  t.equal(r.code, 0, r.stdout);
  t.same(
    checks.map((c) => c.check),
    ['connection', 'server_version', 'wal_level', 'max_connections', 'listen_notify', 'notification_queue', 'xmin_horizon', 'migrations', 'change_log', 'retention', 'tracked_tables'],
  );
  for (const c of checks) {
    t.same(Object.keys(c), ['check', 'ok', 'detail', 'fix'], `${c.check}: {check, ok, detail, fix}`);
    t.equal(c.ok, true, `${c.check}: ${c.detail}`);
    t.equal(c.fix, null, 'nothing to fix');
    t.ok(c.detail.length > 0, 'a detail');
  }
  t.match(checks[1].detail, /^PostgreSQL \d+/);
  t.match(checks.find((c) => c.check === 'retention')!.detail, /^not configured: change_log keeps every event/);
  const human = await runCli(['doctor'], env);
  t.equal(human.code, 0);
  t.match(human.stdout, /^✓ connection: /);
  t.match(human.stdout, /\nall 11 checks passed\n$/);
  t.notMatch(human.stdout, /✗/);
});

t.test('a transaction holding the xmin horizon: ✗ with its pid, application and state', async (t) => {
  const holder = new pg.Client({ connectionString: db.url, application_name: 'doctor-test-holder' });
  await holder.connect();
  t.teardown(() => holder.end());
  await holder.query('BEGIN');
  const { rows } = await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid, pg_current_xact_id()');
  const pid = rows[0].pid;
  // Older than the threshold given below; waiting for something to become true, not for something not to happen.
  await new Promise((r) => setTimeout(r, 1_200));
  const { r, by } = await doctor(t, ['--horizon-stall-ms', '1000']);
  t.equal(r.code, 1, 'exit 1');
  const h = by('xmin_horizon');
  t.equal(h.ok, false);
  t.match(h.detail, new RegExp(`^pid ${pid} \\(application "doctor-test-holder", state idle in transaction, query start \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\) has held the xmin horizon for \\d+ s`));
  t.equal(h.fix, `end that transaction: COMMIT or ROLLBACK in its session, or SELECT pg_terminate_backend(${pid})`);
  t.equal(by('connection').ok, true, 'the other checks still pass');
  const human = await runCli(['doctor', '--horizon-stall-ms', '1000'], env);
  t.equal(human.code, 1);
  t.match(human.stdout, new RegExp(`\\n✗ xmin_horizon: pid ${pid} .*\\n {4}fix: end that transaction`));
  t.match(human.stdout, /\n1 of 11 checks failed\n$/);

  const young = await doctor(t, ['--horizon-stall-ms', '600000']);
  t.equal(young.by('xmin_horizon').ok, true, 'younger than PGFEED_HORIZON_STALL_MS, it is not a problem yet');
  await holder.query('ROLLBACK');
  t.equal((await doctor(t, ['--horizon-stall-ms', '1000'])).r.code, 0, 'once it ends, all is well');
});

t.test("a tracked table's project index: ✗ without one that starts with the column, ✓ with it", async (t) => {
  await db.pool.query(`CREATE TABLE orders (id int PRIMARY KEY, tenant text NOT NULL, placed date);
    CREATE INDEX orders_id_tenant ON orders (id, tenant);
    CREATE INDEX orders_tenant_partial ON orders (tenant) WHERE placed > '2026-01-01';
    CREATE INDEX orders_tenant_hash ON orders USING hash (tenant)`);
  t.equal((await runCli(['track', 'orders', '--project-column', 'tenant'], env)).code, 0);
  let d = await doctor(t);
  t.equal(d.r.code, 1, 'exit 1');
  const idx = d.by('project_index:public.orders');
  t.equal(idx.ok, false, 'the column second, a partial index and a hash index do not count');
  t.match(idx.detail, /no valid btree index of public\.orders starts with its project column tenant/);
  t.equal(idx.fix, 'CREATE INDEX CONCURRENTLY ON public.orders (tenant)');
  t.equal(d.by('triggers:public.orders').ok, true);
  t.match(d.by('tracked_tables').detail, /^1 tracked/);
  await db.pool.query(idx.fix!);
  d = await doctor(t);
  t.equal(d.r.code, 0, 'with the index doctor proposed, all is well');
  t.match(d.by('project_index:public.orders').detail, /^orders_tenant_idx starts with the project column tenant$/);
});

t.test('a disabled or missing capture trigger: ✗, until the table is tracked again', async (t) => {
  await db.pool.query('ALTER TABLE orders DISABLE TRIGGER pgfeed_capture_update');
  let d = await doctor(t);
  t.equal(d.r.code, 1, 'exit 1');
  let tg = d.by('triggers:public.orders');
  t.equal(tg.ok, false);
  t.equal(tg.detail, 'pgfeed_capture_update is disabled: those changes of public.orders are not captured');
  t.equal(tg.fix, "pgfeed track 'public.orders' --project-column 'tenant' (it re-creates the four triggers, enabled)");
  await db.pool.query('DROP TRIGGER pgfeed_capture_truncate ON orders');
  await db.pool.query('ALTER TABLE orders ENABLE REPLICA TRIGGER pgfeed_capture_insert');
  tg = (await doctor(t)).by('triggers:public.orders');
  t.equal(tg.detail, 'pgfeed_capture_insert fires only in replica sessions, pgfeed_capture_update is disabled, pgfeed_capture_truncate is missing: those changes of public.orders are not captured');
  t.equal((await runCli(['track', 'public.orders', '--project-column', 'tenant'], env)).code, 0, 'the fix');
  d = await doctor(t);
  t.equal(d.by('triggers:public.orders').ok, true);
  t.equal(d.r.code, 0);
});

t.test('a project column that is gone, and a tracked table that was dropped', async (t) => {
  await db.pool.query(`CREATE TABLE gone (id int, tenant text); CREATE TABLE moved (id int, tenant text)`);
  for (const table of ['gone', 'moved']) t.equal((await runCli(['track', table, '--project-column', 'tenant'], env)).code, 0);
  const { rows } = await db.pool.query<{ oid: number }>(`SELECT 'gone'::regclass::oid::int AS oid`);
  await db.pool.query('DROP TABLE gone; ALTER TABLE moved RENAME tenant TO account');
  t.teardown(() => db.pool.query(`DELETE FROM pgfeed.tracked WHERE tbl::oid = ${rows[0].oid}; SELECT pgfeed.untrack('moved')`));
  const d = await doctor(t);
  t.equal(d.r.code, 1);
  t.same(d.by(`tracked:${rows[0].oid}`), { check: `tracked:${rows[0].oid}`, ok: false, detail: `pgfeed.tracked names table oid ${rows[0].oid}, which no longer exists`, fix: `DELETE FROM pgfeed.tracked WHERE tbl = ${rows[0].oid}` });
  const col = d.by('project_index:public.moved');
  t.equal(col.ok, false);
  t.match(col.detail, /^public\.moved has no column tenant any more: every write to it fails/);
});

t.test('change_log: its size, row estimate and oldest row', async (t) => {
  const { rows } = await db.pool.query<{ seq: string }>(`SELECT pgfeed.emit('acme', 'first', '{}')::text AS seq`);
  await db.pool.query(`SELECT pgfeed.emit('acme', 'second', '{}')`);
  await db.pool.query('ANALYZE pgfeed.change_log');
  const { rows: n } = await db.pool.query<{ n: number }>('SELECT reltuples::int AS n FROM pg_class WHERE oid = $1::regclass', ['pgfeed.change_log']);
  const c = (await doctor(t)).by('change_log');
  t.equal(c.ok, true);
  t.match(c.detail, new RegExp(`^\\d+ (bytes|kB|MB|GB), about ${n[0].n} rows \\(pg_class estimate\\), the oldest seq \\d+, from \\d{4}-`));
  const oldest = Number((await db.pool.query<{ seq: string }>('SELECT min(seq)::text AS seq FROM pgfeed.change_log')).rows[0].seq);
  t.ok(Number(rows[0].seq) >= oldest);
  t.ok(c.detail.includes(`the oldest seq ${oldest},`), `it names the oldest seq, ${oldest}: ${c.detail}`);
});

t.test('max_connections without room for the pool plus LISTEN: ✗', async (t) => {
  const d = await doctor(t, ['--pool-size', '500']);
  t.equal(d.r.code, 1);
  const c = d.by('max_connections');
  t.equal(c.ok, false);
  t.match(c.detail, /of max_connections \d+ free .*each daemon needs 501: its pool of 500 \(PGFEED_POOL_SIZE\) and one for LISTEN/);
  t.match(c.fix, /raise max_connections/);
});

t.test('the migration level: behind this build, and no schema at all', async (t) => {
  // The newest migration, as if this build were newer than the database.
  const [prev, last] = (await loadMigrations()).slice(-2);
  const behind = await testDatabase(t);
  // Every migration after the first is pending; the files are read, so a new migration keeps this true.
  const later = (await loadMigrations()).slice(1);
  const newest = later.at(-1)!.id;
  await behind.pool.query('DELETE FROM pgfeed.migrations WHERE id > 1');
  let d = await doctor(t, [], behind.url);
  t.equal(d.r.code, 1);
  t.same(d.by('migrations'), { check: 'migrations', ok: false, detail: `the database is at migration 1; this pgfeed has ${newest} (pending: ${later.map((m) => m.name).join(', ')})`, fix: 'run pgfeed migrate' });
  await behind.pool.query(`INSERT INTO pgfeed.migrations (id, name) SELECT * FROM unnest($1::int[], $2::text[]) UNION ALL VALUES (99, '099_future.sql')`, [later.map((m) => m.id), later.map((m) => m.name)]);
  d = await doctor(t, [], behind.url);
  t.same(d.by('migrations'), { check: 'migrations', ok: false, detail: `the database is at migration 99; this pgfeed knows up to ${newest}`, fix: 'upgrade pgfeed: a newer one migrated this database' });

  d = await doctor(t, [], await emptyDatabase(t));
  t.equal(d.r.code, 1);
  t.same(d.by('migrations'), { check: 'migrations', ok: false, detail: 'the database has no pgfeed schema', fix: 'run pgfeed migrate (serve also migrates at start-up)' });
  t.notOk(d.checks.some((c) => c.check === 'change_log'), 'nothing is read from a schema that is not there');
});

t.test('an unreachable database is a failed connection check, exit 1', async (t) => {
  const r = await runCli(['doctor', '--json'], { DATABASE_URL: 'postgres://pgfeed@127.0.0.1:1/none' });
  t.equal(r.code, 1);
  const checks = JSON.parse(r.stdout) as Check[];
  t.same(checks.map((c) => [c.check, c.ok]), [['connection', false]]);
  t.match(checks[0].detail, /^cannot connect to 127\.0\.0\.1:1\/none: .*ECONNREFUSED/);
});
