// pgfeed settings shows pgfeed.settings and writes what its flags give, the
// same write as pgfeed migrate --channel/--notify; migrate --json says what
// it applied and wrote.
import pg from 'pg';
import t from 'tap';
import { loadMigrations } from '../../src/db/migrate.js';
import { emptyDatabase, testDatabase } from '../harness/db.js';
import { jsonResult, runCli } from '../helpers/cli.js';

const db = await testDatabase(t);
const env = { DATABASE_URL: db.url };
const stored = async (pool: pg.Pool | pg.Client = db.pool) => (await pool.query('SELECT channel, notify FROM pgfeed.settings')).rows[0];

t.test('settings shows the row of pgfeed.settings', async (t) => {
  const r = await runCli(['settings'], env);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'channel pgfeed\nnotify  true\n');
  t.same(jsonResult(t, await runCli(['settings', '--json'], env)), { channel: 'pgfeed', notify: true });
});

t.test('settings --channel/--notify write the ones given', async (t) => {
  t.teardown(() => db.pool.query(`UPDATE pgfeed.settings SET channel = 'pgfeed', notify = true`));
  let r = await runCli(['settings', '--channel', 'orders_feed'], env);
  t.equal(r.code, 0, r.stderr);
  t.same(await stored(), { channel: 'orders_feed', notify: true }, 'the channel written, notify kept');
  t.match(r.stdout, /^channel orders_feed\nnotify {2}true\nwrote channel orders_feed to pgfeed\.settings\nrestart every replica with PGFEED_CHANNEL=orders_feed: /);
  r = await runCli(['settings', '--notify', 'false', '--json'], env);
  t.same(jsonResult(t, r), { channel: 'orders_feed', notify: false });
  t.same(await stored(), { channel: 'orders_feed', notify: false }, 'notify written, the channel kept');
});

t.test('the environment does not write: showing never changes them', async (t) => {
  const r = await runCli(['settings', '--json'], { ...env, PGFEED_CHANNEL: 'from_env', PGFEED_NOTIFY: 'false' });
  t.same(jsonResult(t, r), { channel: 'pgfeed', notify: true });
  t.same(await stored(), { channel: 'pgfeed', notify: true });
});

t.test('migrate --json: the migrations applied and the settings written', async (t) => {
  const url = await emptyDatabase(t);
  let doc = jsonResult(t, await runCli(['migrate', '--json', '--channel', 'fresh'], { DATABASE_URL: url }));
  t.same(doc, { applied: (await loadMigrations()).map((m) => m.name), written: { channel: 'fresh' } }, 'every migration, in order');
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  t.teardown(() => c.end());
  t.same(await stored(c), { channel: 'fresh', notify: true });
  doc = jsonResult(t, await runCli(['migrate', '--json'], { DATABASE_URL: url, PGFEED_NOTIFY: 'false' }));
  t.same(doc, { applied: [], written: { notify: false } }, 'an env var is given, for migrate');
  t.same(await stored(c), { channel: 'fresh', notify: false });
  const r = await runCli(['migrate'], { DATABASE_URL: url });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'the database was up to date\n');
  t.equal(r.stderr, '', 'no log lines when nothing went wrong');
});
