// Row-level security on pgfeed.change_log (sql/005_row_security.sql,
// src/db/row-security.ts): with it on, a read sees only the project its
// transaction names, whatever its own WHERE says, and writers still append.
import pg from 'pg';
import t from 'tap';
import { readBatch } from '../src/db/read-batch.js';
import { positionOf } from '../src/db/position-of.js';
import { checkRowSecurity, ReadScope } from '../src/db/row-security.js';
import type { Filter } from '../src/interfaces.js';
import { START } from '../src/position.js';
import { testDatabase } from './harness/db.js';
import { runAs, scratchRoles, urlAs, ROLE_PASSWORD } from './helpers/roles.js';

const db = await testDatabase(t);
const role = scratchRoles(t, ['rls_reader', 'rls_writer'], () => [db.name]);
await db.pool.query(`
  CREATE ROLE ${role.rls_reader} LOGIN PASSWORD '${ROLE_PASSWORD}';
  CREATE ROLE ${role.rls_writer} LOGIN PASSWORD '${ROLE_PASSWORD}';
  GRANT USAGE ON SCHEMA pgfeed TO ${role.rls_reader}, ${role.rls_writer};
  GRANT SELECT ON pgfeed.change_log, pgfeed.settings, pgfeed.retention, pgfeed.pruned TO ${role.rls_reader};
  GRANT SELECT ON pgfeed.tracked TO ${role.rls_writer};
  GRANT INSERT, SELECT (seq) ON pgfeed.change_log TO ${role.rls_writer};
  GRANT USAGE ON SEQUENCE pgfeed.change_log_seq_seq TO ${role.rls_writer};
  CREATE TABLE orders (id serial PRIMARY KEY, tenant text NOT NULL);
  GRANT INSERT ON orders TO ${role.rls_writer}; GRANT USAGE ON SEQUENCE orders_id_seq TO ${role.rls_writer};
  SELECT pgfeed.track('orders', 'tenant');
  ALTER TABLE pgfeed.change_log ENABLE ROW LEVEL SECURITY`);

t.test('writers still capture and emit with row security on', async (t) => {
  const writer = urlAs(db.url, role.rls_writer);
  const [ins] = await runAs(writer, `INSERT INTO orders (tenant) VALUES ('acme'), ('beta')`);
  t.equal(ins.rowCount, 2, 'the captured insert');
  const [emitted] = await runAs(writer, `SELECT pgfeed.emit('acme', 'hello', '{}') AS seq`);
  t.ok(Number(emitted.rows[0].seq) > 0, 'emit returns its seq (INSERT ... RETURNING passes the own-writes policy)');
  const { rows } = await db.pool.query(`SELECT project, type FROM pgfeed.change_log ORDER BY seq`);
  t.same(rows, [{ project: 'acme', type: 'orders.insert' }, { project: 'beta', type: 'orders.insert' }, { project: 'acme', type: 'hello' }]);
});

// One connection, so that every read below runs on the backend the one before used.
const readerPool = new pg.Pool({ connectionString: urlAs(db.url, role.rls_reader), max: 1 });
readerPool.on('error', () => {});
t.teardown(() => readerPool.end());
const scope = new ReadScope(readerPool, true);
const acme: Filter = { project: 'acme', types: [] };
const projects = (rows: readonly { project: string }[]) => rows.map((r) => r.project);

t.test('a read sees the project its transaction names, whatever its WHERE says', async (t) => {
  const own = await scope.project('acme', (q) => readBatch(q, START, acme));
  t.same(projects(own.rows), ['acme', 'acme'], 'acme reads acme');
  // A query layer gone wrong: the stream is beta's, the WHERE asks for acme's rows, or for none at all.
  const wrongWhere = await scope.project('beta', (q) => readBatch(q, START, acme));
  t.same(wrongWhere.rows, [], "beta's transaction asking for acme's rows gets none");
  const noWhere = await scope.project('beta', (q) => readBatch(q, START, null));
  t.same(projects(noWhere.rows), ['beta'], "beta's transaction reading every project gets beta's rows alone");
  const seq = own.rows[0].seq;
  t.same(await scope.project('acme', (q) => positionOf(q, seq, 'acme')), { kind: 'found', pos: { xid: own.rows[0].xid, seq } }, 'acme resolves its cursor');
  t.same(await scope.project('beta', (q) => positionOf(q, seq, 'acme')), { kind: 'unknown' }, "beta's transaction cannot resolve acme's cursor");
});

t.test("the tail's transactions read every project; no project name stands for them", async (t) => {
  const all = await scope.allProjects((q) => readBatch(q, START, null));
  t.same(projects(all.rows), ['acme', 'beta', 'acme']);
  for (const name of ['*', 'on', '%', "' OR true --"]) {
    const got = await scope.project(name, (q) => readBatch(q, START, null));
    t.same(got.rows, [], `project ${JSON.stringify(name)} reads nothing`);
  }
});

t.test('outside a scoped transaction nothing is visible, and no setting outlives one', async (t) => {
  await scope.project('acme', (q) => readBatch(q, START, acme));
  const { rows } = await readerPool.query(`SELECT current_setting('pgfeed.project', true) AS p, count(c.*)::int AS n FROM (SELECT 1) one LEFT JOIN pgfeed.change_log c ON true`);
  t.same(rows, [{ p: '', n: 0 }], 'the same connection, after the scoped read: no project, no rows');
  const unscoped = new ReadScope(readerPool, false);
  t.same((await unscoped.project('acme', (q) => readBatch(q, START, acme))).rows, [], 'a daemon left with row security off would read nothing (checkRowSecurity refuses it)');
});

t.test('a failed read rolls back and leaves the connection usable', async (t) => {
  await t.rejects(scope.project('acme', (q) => q.query('SELECT 1 / 0')), { code: '22012' });
  t.same(projects((await scope.project('beta', (q) => readBatch(q, START, null))).rows), ['beta'], 'the next read, on the same connection');
});

t.test('checkRowSecurity refuses a setting that does not match what binds the role', async (t) => {
  await t.resolves(checkRowSecurity(readerPool, true), 'on, for a role the policies bind');
  await t.rejects(checkRowSecurity(readerPool, false), { code: 'row_security_mismatch', message: /binds role .*would see no rows/ }, 'off, for a role they bind');
  await t.rejects(checkRowSecurity(db.pool, true), { code: 'row_security_mismatch', message: /superuser/ }, 'on, for a superuser');
  await t.resolves(checkRowSecurity(db.pool, false), 'off, for a superuser');
  await db.pool.query('ALTER TABLE pgfeed.change_log DISABLE ROW LEVEL SECURITY');
  t.teardown(() => db.pool.query('ALTER TABLE pgfeed.change_log ENABLE ROW LEVEL SECURITY'));
  await t.rejects(checkRowSecurity(readerPool, true), { code: 'row_security_mismatch', message: /not enabled on pgfeed.change_log/ }, 'on, with the table not enabled');
});
