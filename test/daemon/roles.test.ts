// The roles of docs/deploy.md, as written there, are enough: the daemon's
// role migrates and serves, the table owner tracks, and a writer's inserts
// and emits are captured, with no other privilege (none of them a superuser).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import t from 'tap';
import { readState } from '../harness/state.js';
import { startDaemon } from '../helpers/daemon.js';
import { getJson } from '../helpers/sse-client.js';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const deploy = readFileSync(new URL('../../docs/deploy.md', import.meta.url), 'utf8');
const section = deploy.slice(deploy.indexOf('## 2. The database role'), deploy.indexOf('## 3.'));
const [createRole, grants] = [...section.matchAll(/```sql\n([^]*?)```/g)].map((m) => m[1]);

// Roles are cluster-wide: each name gets a suffix of its own.
const suffix = randomBytes(4).toString('hex');
const names = { pgfeed_daemon: `pgfeed_daemon_${suffix}`, app_owner: `app_owner_${suffix}`, app_writer: `app_writer_${suffix}`, app: `app_${suffix}` };
const localise = (sql: string) => sql.replace(/\b(pgfeed_daemon|app_owner|app_writer|app)\b(?!\.)/g, (n) => names[n as keyof typeof names]);

const { adminUrl } = readState();
const urlOf = (user: string | null, database: string) => {
  const u = new URL(adminUrl);
  if (user) [u.username, u.password] = [user, 'change-me'];
  u.pathname = `/${database}`;
  return u.href;
};
async function as(url: string, sql: string): Promise<pg.QueryResult[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return ([] as pg.QueryResult[]).concat(await c.query(sql));
  } finally {
    await c.end();
  }
}

t.ok(createRole && grants, 'docs/deploy.md has the two SQL blocks');
t.match(createRole, /CREATE ROLE pgfeed_daemon/, 'the first creates the daemon role');
t.not(localise(grants), grants, 'the role names are found in the grants');

const admin = adminUrl;
await as(admin, `CREATE DATABASE ${names.app}`);
await as(admin, `CREATE ROLE ${names.app_owner} LOGIN PASSWORD 'change-me'; CREATE ROLE ${names.app_writer} LOGIN PASSWORD 'change-me'`);
t.teardown(async () => {
  await as(admin, `DROP DATABASE IF EXISTS ${names.app} WITH (FORCE)`);
  await as(admin, `DROP ROLE IF EXISTS ${names.pgfeed_daemon}; DROP ROLE IF EXISTS ${names.app_owner}; DROP ROLE IF EXISTS ${names.app_writer}`);
});
// The documented statement, run by whoever administers the server.
await as(admin, localise(createRole));
// Since PostgreSQL 15, PUBLIC may not create in the public schema; the application's owner may.
await as(urlOf(null, names.app), `GRANT CREATE ON SCHEMA public TO ${names.app_owner}`);

const daemonUrl = urlOf(names.pgfeed_daemon, names.app);
t.test('the daemon role migrates', async (t) => {
  execFileSync(process.execPath, [CLI, 'migrate'], { env: { PATH: process.env.PATH, DATABASE_URL: daemonUrl }, stdio: 'pipe' });
  const [{ rows }] = await as(daemonUrl, `SELECT nspowner::regrole::text AS owner FROM pg_namespace WHERE nspname = 'pgfeed'`);
  t.equal(rows[0].owner, names.pgfeed_daemon, 'and owns the pgfeed schema');
});

t.test('the owner tracks, the writer writes and emits, the daemon serves', async (t) => {
  await as(daemonUrl, localise(grants));
  await as(urlOf(names.app_owner, names.app), `CREATE TABLE orders (id serial PRIMARY KEY, tenant text NOT NULL);
    GRANT SELECT, INSERT ON orders TO ${names.app_writer}; GRANT USAGE ON SEQUENCE orders_id_seq TO ${names.app_writer};
    SELECT pgfeed.track('orders', 'tenant')`);
  const writer = urlOf(names.app_writer, names.app);
  await as(writer, `INSERT INTO orders (tenant) VALUES ('acme')`);
  await as(writer, `SELECT pgfeed.emit('acme', 'hello', '{"n": 1}')`);
  const daemon = await startDaemon(t, daemonUrl);
  t.equal((await getJson(`${daemon.base}/readyz`)).status, 200, 'ready');
  const page = await getJson(`${daemon.base}/v1/changes?project=acme`);
  t.match(page.body.events, [{ type: 'orders.insert', data: { tenant: 'acme' } }, { type: 'hello', data: { n: 1 } }], 'both changes are served');
});
