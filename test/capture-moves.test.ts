// Capture SQL (migration 002): a row that moves to another project tells
// both projects, and TRUNCATE tells every project that had rows.
import pg from 'pg';
import t from 'tap';
import { loadMigrations, migrate } from '../src/db/migrate.js';
import { emptyDatabase, testDatabase } from './harness/db.js';
import { DELIVERY_ORDER, emit } from './helpers/change-log.js';
import { waitUntil } from './helpers/wait.js';

interface LogRow {
  seq: string;
  xid: string;
  project: string;
  type: string;
  op: string | null;
  data: any;
}

const log = async (db: Awaited<ReturnType<typeof testDatabase>>) =>
  (await db.pool.query<LogRow>(`SELECT seq, xid::text, project, type, op, data FROM pgfeed.change_log ${DELIVERY_ORDER}`)).rows;

t.test('an update that changes the project: move_out to the old project, move_in to the new', async (t) => {
  const db = await testDatabase(t);
  await db.pool.query(`CREATE TABLE items (id int PRIMARY KEY, tenant text, secret text);
    SELECT pgfeed.track('items', 'tenant');
    INSERT INTO items VALUES (1, 'a', 'a-only'), (2, 'a', 'stays'), (3, 'b', 'b-row')`);
  await db.pool.query(`DELETE FROM pgfeed.change_log`);
  await db.pool.query(`UPDATE items SET tenant = CASE id WHEN 1 THEN 'b' WHEN 3 THEN 'a' ELSE tenant END,
                                        secret = secret || '+new' WHERE id IN (1, 2, 3)`);
  const rows = await log(db);
  t.same(
    rows.map((r) => [r.project, r.type, r.op, r.data?.id ?? r.data?.new?.id]),
    [
      ['a', 'items.move_out', 'delete', 1],
      ['b', 'items.move_in', 'insert', 1],
      ['a', 'items.update', 'update', 2],
      ['b', 'items.move_out', 'delete', 3],
      ['a', 'items.move_in', 'insert', 3],
    ],
    'each moved row gives a move_out then a move_in, next to each other; a row that stays gives an update',
  );
  t.equal(new Set(rows.map((r) => r.xid)).size, 1, 'all in the one transaction');
  t.same(rows[0].data, { id: 1, tenant: 'a', secret: 'a-only' }, 'the old project sees the old row only');
  t.same(rows[1].data, { id: 1, tenant: 'b', secret: 'a-only+new' }, 'the new project sees the new row only');
  t.notMatch(JSON.stringify(rows[0].data), /\+new|"b"/, 'no value of the new row reaches the old project');
  t.notMatch(JSON.stringify(rows[1].data), /"a"/, 'no value of the old row reaches the new project');
});

t.test('a row whose old project was NULL (written before track) only moves in', async (t) => {
  const db = await testDatabase(t);
  await db.pool.query(`CREATE TABLE items (id int PRIMARY KEY, tenant text);
    INSERT INTO items VALUES (1, NULL);
    SELECT pgfeed.track('items', 'tenant')`);
  await db.pool.query(`UPDATE items SET tenant = 'a'`);
  t.same((await log(db)).map((r) => [r.project, r.type, r.op]), [['a', 'items.move_in', 'insert']]);
});

t.test('a constant-project table never moves', async (t) => {
  const db = await testDatabase(t);
  await db.pool.query(`CREATE TABLE items (id int PRIMARY KEY, tenant text);
    SELECT pgfeed.track('items', NULL, 'p');
    INSERT INTO items VALUES (1, 'a')`);
  await db.pool.query(`UPDATE items SET tenant = 'b'`);
  t.same((await log(db)).map((r) => [r.project, r.type]), [['p', 'items.insert'], ['p', 'items.update']]);
});

t.test('TRUNCATE writes one truncate event to each project that had rows', async (t) => {
  const db = await testDatabase(t);
  await db.pool.query(`CREATE TABLE items (id int PRIMARY KEY, tenant int);
    CREATE TABLE fixed (id int);
    CREATE TABLE empty (id int, tenant text);
    SELECT pgfeed.track('items', 'tenant');
    SELECT pgfeed.track('fixed', NULL, 'p');
    SELECT pgfeed.track('empty', 'tenant');
    INSERT INTO items VALUES (1, 7), (2, 7), (3, 42);
    INSERT INTO fixed VALUES (1)`);
  await db.pool.query(`DELETE FROM pgfeed.change_log`);
  const listener = await db.pool.connect();
  t.teardown(() => listener.release());
  const payloads: string[] = [];
  listener.on('notification', (n) => payloads.push(n.payload ?? ''));
  await listener.query('LISTEN pgfeed');
  await db.pool.query(`TRUNCATE items, fixed, empty`);
  const rows = await log(db);
  t.same(
    rows.map((r) => [r.project, r.type, r.op, r.data]),
    [
      ['42', 'items.truncate', 'truncate', null],
      ['7', 'items.truncate', 'truncate', null],
      ['p', 'fixed.truncate', 'truncate', null],
    ],
    'the project rendered as for every other event (an int column gives "7"); nothing for the empty table',
  );
  // A marker after the truncate: once its notification is here, so are the truncate's.
  const marker = String((await emit(db.pool, 'p', 'marker'))[0]);
  await waitUntil(() => payloads.includes(marker), 10_000, 'the marker notification');
  t.equal(payloads.length, 3, 'the truncate notified, once per tracked table that wrote events, then the marker');
});

t.test('a truncate rolled back writes nothing', async (t) => {
  const db = await testDatabase(t);
  await db.pool.query(`CREATE TABLE items (id int, tenant text); SELECT pgfeed.track('items', 'tenant');
    INSERT INTO items VALUES (1, 'a')`);
  await db.withClient(async (c) => {
    await c.query('BEGIN');
    await c.query('TRUNCATE items');
    await c.query('ROLLBACK');
  });
  t.same((await log(db)).map((r) => r.type), ['items.insert']);
  t.equal((await db.pool.query('SELECT count(*)::int AS n FROM items')).rows[0].n, 1);
});

t.test('untrack removes the truncate trigger too', async (t) => {
  const db = await testDatabase(t);
  await db.pool.query(`CREATE TABLE items (id int, tenant text); SELECT pgfeed.track('items', 'tenant');
    SELECT pgfeed.untrack('items')`);
  const { rows } = await db.pool.query(`SELECT tgname FROM pg_trigger WHERE tgrelid = 'items'::regclass`);
  t.same(rows, []);
});

t.test('migration 002 brings tables tracked under 001 along', async (t) => {
  const url = await emptyDatabase(t);
  const [first] = await loadMigrations();
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  t.teardown(() => c.end());
  // A database as 001 left it, with a table tracked then.
  await c.query(`CREATE SCHEMA pgfeed;
    CREATE TABLE pgfeed.migrations (id int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
    INSERT INTO pgfeed.migrations (id, name) VALUES (1, '${first.name}')`);
  await c.query(first.sql);
  await c.query(`CREATE TABLE items (id int PRIMARY KEY, tenant text); SELECT pgfeed.track('items', 'tenant');
    INSERT INTO items VALUES (1, 'a')`);
  t.same(await migrate(url), (await loadMigrations()).slice(1).map((m) => m.name), '002 and every later migration');
  await c.query(`UPDATE items SET tenant = 'b'`);
  await c.query(`TRUNCATE items`);
  const { rows } = await c.query<LogRow>(`SELECT project, type FROM pgfeed.change_log ${DELIVERY_ORDER}`);
  t.same(rows.map((r) => [r.project, r.type]), [
    ['a', 'items.insert'],
    ['a', 'items.move_out'],
    ['b', 'items.move_in'],
    ['b', 'items.truncate'],
  ]);
});
