// pgfeed track, untrack and tracked, against a real database: they call
// pgfeed.track()/untrack() and read pgfeed.tracked; the SQL errors, which
// carry a HINT, come back as one line.
import t from 'tap';
import { emptyDatabase, testDatabase } from '../harness/db.js';
import { jsonResult, oneLineError, runCli } from '../helpers/cli.js';

const db = await testDatabase(t);
await db.pool.query(`
  CREATE TABLE orders (id int PRIMARY KEY, tenant text NOT NULL);
  CREATE SCHEMA billing;
  CREATE TABLE billing.invoices (id int PRIMARY KEY);
  CREATE VIEW order_view AS SELECT * FROM orders;`);
const env = { DATABASE_URL: db.url };
const cli = (...args: string[]) => runCli(args, env);
const trackedRows = async () =>
  (await db.pool.query('SELECT tbl::text AS tbl, type_prefix, project_column, project FROM pgfeed.tracked ORDER BY 1')).rows;
const triggersOf = async (table: string) =>
  (await db.pool.query<{ tgname: string }>('SELECT tgname FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal ORDER BY 1', [table])).rows.map((r) => r.tgname);

t.test('track a table by its project column, then by a constant project', async (t) => {
  let r = await cli('track', 'orders', '--project-column', 'tenant');
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'tracking public.orders: events orders.*, project from column tenant\n');
  t.same(await triggersOf('orders'), ['pgfeed_capture_delete', 'pgfeed_capture_insert', 'pgfeed_capture_truncate', 'pgfeed_capture_update'], 'its four triggers');
  await db.pool.query(`INSERT INTO orders VALUES (1, 'acme')`);
  const { rows } = await db.pool.query(`SELECT project, type FROM pgfeed.change_log WHERE tbl = 'public.orders'`);
  t.same(rows, [{ project: 'acme', type: 'orders.insert' }], 'an insert is captured, into its project');

  r = await cli('track', 'billing.invoices', '--project=acme', '--json');
  t.same(jsonResult(t, r), { table: 'billing.invoices', type_prefix: 'billing.invoices', project_column: null, project: 'acme' }, '--json: the pgfeed.tracked row');
  t.same(await trackedRows(), [
    { tbl: 'billing.invoices', type_prefix: 'billing.invoices', project_column: null, project: 'acme' },
    { tbl: 'orders', type_prefix: 'orders', project_column: 'tenant', project: null },
  ]);
});

t.test('tracked lists them, with their project source', async (t) => {
  const r = await cli('tracked');
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'billing.invoices: events billing.invoices.*, project acme (every row)\npublic.orders: events orders.*, project from column tenant\n');
  t.same(jsonResult(t, await cli('tracked', '--json')), [
    { table: 'billing.invoices', type_prefix: 'billing.invoices', project_column: null, project: 'acme' },
    { table: 'public.orders', type_prefix: 'orders', project_column: 'tenant', project: null },
  ]);
});

t.test("track's SQL errors: one line, exit 1, with the HINT", async (t) => {
  oneLineError(t, await cli('track', 'nosuch', '--project', 'acme'), 1, /relation "nosuch" does not exist/);
  const line = oneLineError(t, await cli('track', 'orders', '--project-column', 'nope'), 1, /pgfeed\.track: table orders has no column "nope"/);
  t.match(line, /\(hint: Name an existing column that holds each row's project, or pass a constant project\.\)$/, 'the HINT follows the message');
  oneLineError(t, await cli('track', 'order_view', '--project', 'acme'), 1, /pgfeed\.track: order_view is not a table/);
  oneLineError(t, await cli('track', 'pgfeed.change_log', '--project', 'acme'), 1, /tables of the pgfeed schema cannot be tracked/);
  t.same((await trackedRows()).map((r) => r.tbl), ['billing.invoices', 'orders'], 'what was tracked is unchanged');
});

t.test('untrack drops the triggers; untracking again says it was not tracked', async (t) => {
  let r = await cli('untrack', 'orders');
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'untracked public.orders\n');
  t.same(await triggersOf('orders'), [], 'no trigger left');
  t.same((await trackedRows()).map((r) => r.tbl), ['billing.invoices']);
  r = await cli('untrack', 'orders');
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'orders was not tracked; nothing changed\n');
  t.same(jsonResult(t, await cli('untrack', 'billing.invoices', '--json')), { table: 'billing.invoices', was_tracked: true });
  t.same(jsonResult(t, await cli('untrack', 'billing.invoices', '--json')), { table: 'billing.invoices', was_tracked: false });
  t.same(jsonResult(t, await cli('tracked', '--json')), [], 'nothing is tracked');
  t.equal((await cli('tracked')).stdout, 'no table is tracked; pgfeed track <table> --project-column C starts one\n');
  oneLineError(t, await cli('untrack', 'nosuch'), 1, /relation "nosuch" does not exist/);
});

t.test('a database pgfeed has not migrated is named as such', async (t) => {
  const url = await emptyDatabase(t);
  for (const args of [['tracked'], ['track', 'orders', '--project', 'acme'], ['untrack', 'orders'], ['emit', 'acme', 'e'], ['settings']]) {
    oneLineError(t, await runCli(args, { DATABASE_URL: url }), 1, /has no pgfeed schema; run pgfeed migrate first/);
  }
});
