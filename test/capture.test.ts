// Capture SQL: triggers, emit, and track() errors, on a real Postgres.
import t from 'tap';
import { testDatabase, type TestDatabase } from './harness/db.js';
import { DELIVERY_ORDER } from './helpers/change-log.js';
import { waitUntil } from './helpers/wait.js';
/**
 * The payloads NOTIFY sent on the pgfeed channel while `writes` ran. A marker
 * notified after them is the witness: Postgres delivers notifications in
 * commit order, so anything the writes sent has arrived once the marker has.
 */
async function notificationsOf(db: TestDatabase, writes: () => Promise<void>): Promise<string[]> {
  const listener = await db.pool.connect();
  const payloads: string[] = [];
  listener.on('notification', (n) => payloads.push(n.payload ?? ''));
  try {
    await listener.query('LISTEN pgfeed');
    await writes();
    await db.pool.query(`SELECT pg_notify('pgfeed', 'marker')`);
    await waitUntil(() => payloads.includes('marker'), 5_000, 'the marker notification');
    return payloads.slice(0, payloads.indexOf('marker'));
  } finally {
    await listener.query('UNLISTEN pgfeed');
    listener.release();
  }
}

interface LogRow {
  seq: string;
  project: string;
  type: string;
  op: string | null;
  tbl: string | null;
  data: any;
}

t.test('insert, update and delete are captured', async (t) => {
  const db = await testDatabase(t);
  await db.pool.query(`CREATE TABLE orders (id int PRIMARY KEY, tenant text, total int);
    SELECT pgfeed.track('orders', 'tenant')`);
  await db.pool.query(`INSERT INTO orders VALUES (1, 'acme', 10), (2, 'globex', 20)`);
  await db.pool.query(`UPDATE orders SET total = total + 1`);
  await db.pool.query(`DELETE FROM orders WHERE id = 1`);
  const { rows } = await db.pool.query<LogRow>(`SELECT * FROM pgfeed.change_log ${DELIVERY_ORDER}`);
  t.same(
    rows.map((r) => [r.project, r.type, r.op, r.tbl]),
    [
      ['acme', 'orders.insert', 'insert', 'public.orders'],
      ['globex', 'orders.insert', 'insert', 'public.orders'],
      ['acme', 'orders.update', 'update', 'public.orders'],
      ['globex', 'orders.update', 'update', 'public.orders'],
      ['acme', 'orders.delete', 'delete', 'public.orders'],
    ],
  );
  t.same(rows[0].data, { id: 1, tenant: 'acme', total: 10 }, 'insert carries the new row');
  t.same(rows[3].data, { old: { id: 2, tenant: 'globex', total: 20 }, new: { id: 2, tenant: 'globex', total: 21 } }, 'update carries old and new');
  t.same(rows[4].data, { id: 1, tenant: 'acme', total: 11 }, 'delete carries the old row');
});

t.test('a multi-row update pairs each old row with its own new row', async (t) => {
  const db = await testDatabase(t);
  await db.pool.query(`CREATE TABLE items (id int PRIMARY KEY, v int);
    SELECT pgfeed.track('items', NULL, 'p');
    INSERT INTO items SELECT g, g FROM generate_series(1, 500) g`);
  await db.pool.query(`UPDATE items SET v = v * 2 WHERE id % 3 <> 0`);
  const { rows } = await db.pool.query<LogRow>(`SELECT data FROM pgfeed.change_log WHERE op = 'update'`);
  t.equal(rows.length, 334);
  t.ok(rows.every((r) => r.data.old.id === r.data.new.id && r.data.new.v === r.data.old.v * 2), 'pairs match');
});

t.test('one NOTIFY per statement, carrying a seq', async (t) => {
  const db = await testDatabase(t);
  await db.pool.query(`CREATE TABLE bulk (id int); SELECT pgfeed.track('bulk', NULL, 'p')`);
  const payloads = await notificationsOf(db, async () => {
    await db.pool.query('INSERT INTO bulk SELECT generate_series(1, 1000)');
    await db.pool.query('INSERT INTO bulk SELECT generate_series(1, 10)');
    await db.pool.query('UPDATE bulk SET id = id WHERE false');
  });
  t.equal(payloads.length, 2, 'two writing statements, two notifications; an empty statement sends none');
  const max = (await db.pool.query('SELECT max(seq)::text AS m FROM pgfeed.change_log')).rows[0].m;
  t.equal(payloads[1], max, 'the payload is the last seq of the statement');
});

t.test('update and delete notify once with their own last seq', async (t) => {
  const db = await testDatabase(t);
  await db.pool.query(`CREATE TABLE rows3 (id int, v int); SELECT pgfeed.track('rows3', NULL, 'p');
    INSERT INTO rows3 SELECT g, g FROM generate_series(1, 50) g`);
  const last = async () => (await db.pool.query('SELECT max(seq)::text AS m FROM pgfeed.change_log')).rows[0].m;
  let afterUpdate = '';
  let afterDelete = '';
  const payloads = await notificationsOf(db, async () => {
    await db.pool.query('UPDATE rows3 SET v = v + 1 WHERE id <= 20');
    afterUpdate = await last();
    await db.pool.query('DELETE FROM rows3 WHERE id > 40');
    afterDelete = await last();
    await db.pool.query('DELETE FROM rows3 WHERE id > 1000');
  });
  t.same(payloads, [afterUpdate, afterDelete], 'one each, the last seq each wrote; nothing for a statement that touched no row');
});

t.test('types are <table>.<op>, schema-qualified outside public', async (t) => {
  const db = await testDatabase(t);
  await db.pool.query(`CREATE SCHEMA sales; CREATE TABLE sales.orders (id int); CREATE TABLE orders (id int);
    SELECT pgfeed.track('sales.orders', NULL, 'p'); SELECT pgfeed.track('orders', NULL, 'p');
    INSERT INTO sales.orders VALUES (1); INSERT INTO orders VALUES (1);`);
  const { rows } = await db.pool.query<LogRow>('SELECT type, tbl FROM pgfeed.change_log ORDER BY seq');
  t.same(rows.map((r) => [r.type, r.tbl]), [['sales.orders.insert', 'sales.orders'], ['orders.insert', 'public.orders']]);
});

t.test('emit commits and rolls back with its transaction, savepoints included', async (t) => {
  const db = await testDatabase(t);
  const seq = await db.withTransaction(async (c) => {
    const kept = (await c.query(`SELECT pgfeed.emit('p', 'pr_opened', '{"n":1}') AS s`)).rows[0].s;
    await c.query('SAVEPOINT a');
    await c.query(`SELECT pgfeed.emit('p', 'pr_closed', '{"n":2}')`);
    await c.query('ROLLBACK TO SAVEPOINT a');
    await c.query(`SELECT pgfeed.emit('p', 'pr_review_thread_added', '{"n":3}')`);
    return kept;
  });
  await db.withTransaction(async (c) => {
    await c.query(`SELECT pgfeed.emit('p', 'session_started', '{}')`);
    await c.query('ROLLBACK');
    await c.query('BEGIN');
  });
  const { rows } = await db.pool.query<LogRow>(`SELECT seq::text, type, op, tbl, data FROM pgfeed.change_log ${DELIVERY_ORDER}`);
  t.same(rows.map((r) => r.type), ['pr_opened', 'pr_review_thread_added']);
  t.equal(rows[0].seq, seq, 'emit returns the seq');
  t.equal(rows[0].op, null);
  t.equal(rows[0].tbl, null);
  const xids = (await db.pool.query('SELECT DISTINCT xid FROM pgfeed.change_log')).rows;
  t.equal(xids.length, 1, 'rows written after a savepoint keep the top-level xid');
});

t.test('emit rejects bad input with clear messages', async (t) => {
  const db = await testDatabase(t);
  await t.rejects(db.pool.query(`SELECT pgfeed.emit('', 't', '{}')`), /project must be a non-empty/);
  await t.rejects(db.pool.query(`SELECT pgfeed.emit('p', E'a\\nb', '{}')`), /without control characters/);
  await t.rejects(db.pool.query(`SELECT pgfeed.emit('p', 'pgfeed.reset', '{}')`), /reserved/);
});

t.test('untracked tables produce nothing; untrack stops capture', async (t) => {
  const db = await testDatabase(t);
  await db.pool.query(`CREATE TABLE quiet (id int); INSERT INTO quiet VALUES (1);
    CREATE TABLE loud (id int); SELECT pgfeed.track('loud', NULL, 'p'); INSERT INTO loud VALUES (1);
    SELECT pgfeed.untrack('loud'); INSERT INTO loud VALUES (2);`);
  const { rows } = await db.pool.query<LogRow>('SELECT data FROM pgfeed.change_log');
  t.same(rows.map((r) => r.data), [{ id: 1 }]);
});

t.test('a NULL project fails the write loudly', async (t) => {
  const db = await testDatabase(t);
  await db.pool.query(`CREATE TABLE t1 (id int, tenant text); SELECT pgfeed.track('t1', 'tenant')`);
  await t.rejects(db.pool.query(`INSERT INTO t1 VALUES (1, NULL)`), /NULL in its project column "tenant"/);
  t.equal((await db.pool.query('SELECT count(*)::int AS n FROM t1')).rows[0].n, 0, 'the row was not written either');
});

t.test('track() errors name the problem', async (t) => {
  const db = await testDatabase(t);
  await db.pool.query('CREATE TABLE t2 (id int)');
  await t.rejects(db.pool.query(`SELECT pgfeed.track('no_such_table', NULL, 'p')`), /relation "no_such_table" does not exist/);
  await t.rejects(db.pool.query(`SELECT pgfeed.track('t2', 'tenant')`), /has no column "tenant"/);
  await t.rejects(db.pool.query(`SELECT pgfeed.track('t2')`), /exactly one of project_column or project/);
  await t.rejects(db.pool.query(`SELECT pgfeed.track('t2', 'id', 'p')`), /exactly one of project_column or project/);
  await db.pool.query(`CREATE VIEW v2 AS SELECT 1 AS x`);
  await t.rejects(db.pool.query(`SELECT pgfeed.track('v2', NULL, 'p')`), /is not a table/);
});

t.test('track() refuses tables whose types would be reserved or ambiguous', async (t) => {
  const db = await testDatabase(t);
  await db.pool.query(`CREATE TABLE pgfeed (id int); CREATE TABLE "a.b" (id int); CREATE TABLE "line\nbreak" (id int);
    CREATE SCHEMA "s.x"; CREATE TABLE "s.x".t (id int); CREATE SCHEMA other; CREATE TABLE other.pgfeed (id int)`);
  await t.rejects(db.pool.query(`SELECT pgfeed.track('public.pgfeed', NULL, 'p')`), { code: '22023', message: /reserved/ });
  await t.rejects(db.pool.query(`SELECT pgfeed.track('"a.b"', NULL, 'p')`), { code: '22023', message: /contains a dot or a control character/ });
  await t.rejects(db.pool.query(`SELECT pgfeed.track('"s.x".t', NULL, 'p')`), { code: '22023', message: /contains a dot/ });
  await t.rejects(db.pool.query(`SELECT pgfeed.track(E'"line\\nbreak"', NULL, 'p')`), { code: '22023', message: /control character/ });
  await db.pool.query(`SELECT pgfeed.track('other.pgfeed', project => 'p'); INSERT INTO other.pgfeed VALUES (1)`);
  const { rows } = await db.pool.query<LogRow>('SELECT type FROM pgfeed.change_log');
  t.same(rows.map((r) => r.type), ['other.pgfeed.insert'], 'outside public the schema keeps the type out of the reserved prefix');
});

t.test('an empty project fails the write too; the project column may be any type', async (t) => {
  const db = await testDatabase(t);
  await db.pool.query(`CREATE TABLE e1 (id int, tenant text); SELECT pgfeed.track('e1', 'tenant');
    CREATE TABLE e2 (id int, tenant_id int); SELECT pgfeed.track('e2', 'tenant_id')`);
  await t.rejects(db.pool.query(`INSERT INTO e1 VALUES (1, '')`), { code: '23514' });
  await t.rejects(db.pool.query(`INSERT INTO e1 VALUES (1, NULL)`), { code: '23502' });
  await db.pool.query(`INSERT INTO e2 VALUES (1, 42)`);
  t.same((await db.pool.query('SELECT project FROM pgfeed.change_log')).rows, [{ project: '42' }]);
});

t.test('a tracked partitioned table captures writes made through it', async (t) => {
  const db = await testDatabase(t);
  await db.pool.query(`CREATE TABLE parted (id int, tenant text) PARTITION BY LIST (tenant);
    CREATE TABLE parted_a PARTITION OF parted FOR VALUES IN ('a');
    CREATE TABLE parted_b PARTITION OF parted FOR VALUES IN ('b');
    SELECT pgfeed.track('parted', 'tenant');
    INSERT INTO parted VALUES (1, 'a'), (2, 'b'); UPDATE parted SET id = id + 10; DELETE FROM parted WHERE tenant = 'a';
    INSERT INTO parted_a VALUES (3, 'a')`);
  const { rows } = await db.pool.query<LogRow>('SELECT project, type, tbl FROM pgfeed.change_log ORDER BY seq');
  t.same(rows.map((r) => [r.project, r.type, r.tbl]), [
    ['a', 'parted.insert', 'public.parted'], ['b', 'parted.insert', 'public.parted'],
    ['a', 'parted.update', 'public.parted'], ['b', 'parted.update', 'public.parted'],
    ['a', 'parted.delete', 'public.parted'],
  ], 'a write that names a partition directly is not captured');
});

t.test('track() is idempotent', async (t) => {
  const db = await testDatabase(t);
  await db.pool.query(`CREATE TABLE t3 (id int); SELECT pgfeed.track('t3', NULL, 'a'); SELECT pgfeed.track('t3', NULL, 'b');
    INSERT INTO t3 VALUES (1)`);
  const { rows } = await db.pool.query<LogRow>('SELECT project FROM pgfeed.change_log');
  t.same(rows.map((r) => r.project), ['b'], 'one capture, with the latest arguments');
});

t.test('columns named like the trigger internals are captured whole', async (t) => {
  const db = await testDatabase(t);
  await db.pool.query(`CREATE TABLE odd (x int, r int, i int, n int, o int, project text);
    SELECT pgfeed.track('odd', 'project');
    INSERT INTO odd VALUES (1, 2, 3, 4, 5, 'p'); UPDATE odd SET x = 10; DELETE FROM odd`);
  const { rows } = await db.pool.query<LogRow>('SELECT project, data FROM pgfeed.change_log ORDER BY seq');
  const row = { x: 1, r: 2, i: 3, n: 4, o: 5, project: 'p' };
  t.same(rows.map((r) => r.data), [row, { old: row, new: { ...row, x: 10 } }, { ...row, x: 10 }]);
});

t.test('with notify off in pgfeed.settings, writers send no NOTIFY', async (t) => {
  const db = await testDatabase(t);
  await db.pool.query(`CREATE TABLE quietly (id int); SELECT pgfeed.track('quietly', NULL, 'p');
    UPDATE pgfeed.settings SET notify = false`);
  const payloads = await notificationsOf(db, async () => {
    await db.pool.query('INSERT INTO quietly VALUES (1), (2)');
    await db.pool.query(`SELECT pgfeed.emit('p', 'e', '{}')`);
    await db.pool.query('UPDATE pgfeed.settings SET notify = true');
    await db.pool.query('INSERT INTO quietly VALUES (3)');
  });
  const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM pgfeed.change_log');
  t.equal(rows[0].n, 4, 'every change is still captured');
  t.equal(payloads.length, 1, 'only the write made with notify on rang the doorbell');
});

t.test('a writer whose plans are cached follows every change of the settings from its next statement', async (t) => {
  const db = await testDatabase(t);
  await db.pool.query(`CREATE TABLE followed (id int); SELECT pgfeed.track('followed', NULL, 'p')`);
  const writer = await db.pool.connect();
  t.teardown(() => writer.release());
  const listener = await db.pool.connect();
  t.teardown(() => listener.release());
  const heard: string[] = [];
  listener.on('notification', (n) => heard.push(`${n.channel}:${n.payload}`));
  await listener.query('LISTEN pgfeed; LISTEN elsewhere');
  const write = async (what: string) => {
    await writer.query('INSERT INTO followed VALUES (1)');
    await writer.query(`SELECT pgfeed.emit('p', 'e', '{}')`);
    await db.pool.query(`SELECT pg_notify('pgfeed', $1)`, [what]);
    await waitUntil(() => heard.includes(`pgfeed:${what}`), 5_000, `the marker ${what}`);
  };
  // Twice on the default channel: plpgsql caches the capture's plans from the second call on.
  await write('m1');
  await write('m2');
  await db.pool.query(`UPDATE pgfeed.settings SET channel = 'elsewhere'`);
  await write('m3');
  await db.pool.query('UPDATE pgfeed.settings SET notify = false');
  await write('m4');
  const proc = async () => (await db.pool.query(`SELECT xmin::text AS v FROM pg_proc WHERE oid = 'pgfeed.wake_channel()'::regprocedure`)).rows[0].v;
  const before = await proc();
  await db.pool.query('UPDATE pgfeed.settings SET pruned_through = pruned_through');
  t.equal(await proc(), before, 'an update that changes neither channel nor notify leaves the function alone');
  await db.pool.query(`UPDATE pgfeed.settings SET channel = 'pgfeed', notify = true`);
  await write('m5');
  const kinds = heard.map((h) => (h.includes(':m') ? h : h.replace(/:\d+$/, ':seq')));
  t.same(kinds, [
    'pgfeed:seq', 'pgfeed:seq', 'pgfeed:m1',
    'pgfeed:seq', 'pgfeed:seq', 'pgfeed:m2',
    'elsewhere:seq', 'elsewhere:seq', 'pgfeed:m3',
    'pgfeed:m4',
    'pgfeed:seq', 'pgfeed:seq', 'pgfeed:m5',
  ], 'each write rang as the settings said at its statement');
});
