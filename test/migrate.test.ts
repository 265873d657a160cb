// The migration runner: ordered, idempotent, and safe when run concurrently.
import t from 'tap';
import pg from 'pg';
import { loadMigrations, migrate } from '../src/db/migrate.js';
import { readState, withDatabase } from './harness/state.js';

async function emptyDatabase(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const state = readState();
  const name = `pgfeed_m_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: state.adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  t.teardown(async () => {
    const a = new pg.Client({ connectionString: state.adminUrl });
    await a.connect();
    await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await a.end();
  });
  return withDatabase(state.adminUrl, name);
}

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
