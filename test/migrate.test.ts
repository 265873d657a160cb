// The migration runner: ordered, idempotent, and safe when run concurrently.
import t from 'tap';
import pg from 'pg';
import { checkMigrated, loadMigrations, migrate } from '../src/db/migrate.js';
import { emptyDatabase } from './harness/db.js';

t.test('applies every file once, in order; a second run is a no-op', async (t) => {
  const url = await emptyDatabase(t);
  const all = (await loadMigrations()).map((m) => m.name);
  t.ok(all.length >= 1);
  t.same(await migrate(url), all, 'first run applies all');
  t.same(await migrate(url), [], 'second run applies none');
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const rows = (await c.query('SELECT name FROM pgfeed.migrations ORDER BY id')).rows.map((r) => r.name);
  await c.end();
  t.same(rows, all);
});

t.test('four migrators on separate connections at once take turns', async (t) => {
  const url = await emptyDatabase(t);
  const results = await Promise.all([migrate(url), migrate(url), migrate(url), migrate(url)]);
  const applied = results.flat();
  t.equal(applied.length, (await loadMigrations()).length, 'each migration applied exactly once across all of them');
  t.equal(results.filter((r) => r.length > 0).length, 1, 'one migrator did the work; the rest found it done');
});

t.test('a database migrated by a newer pgfeed is refused', async (t) => {
  const url = await emptyDatabase(t);
  await migrate(url);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`INSERT INTO pgfeed.migrations (id, name) VALUES (999, '999_future.sql')`);
  await c.end();
  await t.rejects(migrate(url), { code: 'database_too_new' });
});

t.test('settings: "created" writes them only in the run that creates the schema, "always" on every run', async (t) => {
  const url = await emptyDatabase(t);
  const read = async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const { rows } = await c.query('SELECT channel, notify FROM pgfeed.settings');
    await c.end();
    return rows[0];
  };
  await migrate(url, { values: { channel: 'first', notify: false }, when: 'created' });
  t.same(await read(), { channel: 'first', notify: false }, 'the run that created the schema wrote them');
  await migrate(url, { values: { channel: 'second', notify: true }, when: 'created' });
  t.same(await read(), { channel: 'first', notify: false }, 'a later run with "created" leaves them');
  await migrate(url, { values: { notify: true }, when: 'always' });
  t.same(await read(), { channel: 'first', notify: true }, '"always" writes the values given, and only those');
});

t.test('checkMigrated (serve --migrate false): refuses a database without the schema or with a migration pending', async (t) => {
  const url = await emptyDatabase(t);
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  // The database may be dropped (WITH FORCE) before the pool ends.
  pool.on('error', () => {});
  t.teardown(() => pool.end());
  await t.rejects(checkMigrated(pool), { code: 'database_not_migrated', message: /no pgfeed schema; run pgfeed migrate as the role that owns/ }, 'no schema');
  await migrate(url);
  await t.resolves(checkMigrated(pool), 'migrated');
  const last = (await loadMigrations()).at(-1)!;
  await pool.query('DELETE FROM pgfeed.migrations WHERE id = $1', [last.id]);
  await t.rejects(checkMigrated(pool), { code: 'database_not_migrated', message: new RegExp(`lacks pgfeed migrations ${last.name}`) }, 'the newest pending');
  await pool.query(`INSERT INTO pgfeed.migrations (id, name) VALUES ($1, $2), (999, '999_future.sql')`, [last.id, last.name]);
  await t.rejects(checkMigrated(pool), { code: 'database_too_new' }, 'a newer one applied');
});
