// The roles of docs/database-role.md, as written there, are enough and no
// more: the owner migrates, the table owner tracks, a writer's inserts and
// emits are captured, and the daemon's role (no superuser, not the schema's
// owner) serves with row security on, sees only the project each read is
// for, and is refused everything else.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import t from 'tap';
import { readState } from '../harness/state.js';
import { emit } from '../helpers/change-log.js';
import { CLI, startDaemon } from '../helpers/daemon.js';
import { runAs, scratchRoles, urlAs, ROLE_PASSWORD } from '../helpers/roles.js';
import { connectSse, getJson } from '../helpers/sse-client.js';
import { AUTH_ENV, token } from '../helpers/tokens.js';
import { waitUntil } from '../helpers/wait.js';

const doc = readFileSync(new URL('../../docs/database-role.md', import.meta.url), 'utf8');
const [roles, grants, rowSecurity] = [...doc.matchAll(/```sql\n([^]*?)```/g)].map((m) => m[1]);

t.match(roles, /CREATE ROLE pgfeed_owner[^]*CREATE ROLE pgfeed_daemon/, 'the first block creates the roles');
t.match(grants, /GRANT SELECT ON pgfeed.change_log/, 'the second grants');
t.match(rowSecurity, /ENABLE ROW LEVEL SECURITY/, 'the third turns row security on');

const { adminUrl } = readState();
const database = `app_${randomBytes(4).toString('hex')}`;
await runAs(adminUrl, `CREATE DATABASE ${database}`);
const role = scratchRoles(t, ['pgfeed_owner', 'pgfeed_daemon', 'pgfeed_reader', 'pgfeed_writer', 'app_owner', 'app_writer'], () => [database]);
const names: Record<string, string> = { ...role, app: database };
const localise = (sql: string) => sql.replace(/\b(pgfeed_owner|pgfeed_daemon|pgfeed_reader|pgfeed_writer|app_owner|app_writer|app)\b(?!\.)/g, (n) => names[n]);
const urlOf = (user: keyof typeof role | null) => urlAs(adminUrl, user && role[user], database);
// The application's own roles, as they exist before pgfeed.
await runAs(adminUrl, `CREATE ROLE ${role.app_owner} LOGIN PASSWORD '${ROLE_PASSWORD}'; CREATE ROLE ${role.app_writer} LOGIN PASSWORD '${ROLE_PASSWORD}'`);
// Since PostgreSQL 15, PUBLIC may not create in the public schema; the application's owner may.
await runAs(urlOf(null), `GRANT CREATE ON SCHEMA public TO ${role.app_owner}`);

t.test('the roles block runs twice: roles are cluster-wide and may exist already', async (t) => {
  await runAs(adminUrl, localise(roles));
  await runAs(adminUrl, localise(roles));
  const [{ rows }] = await runAs(adminUrl, `SELECT rolname, rolsuper, rolcanlogin, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname`, [
    [role.pgfeed_daemon, role.pgfeed_owner],
  ]);
  t.same(rows.map((r) => [r.rolsuper, r.rolcanlogin, r.rolbypassrls, r.rolcreaterole]), [[false, true, false, false], [false, true, false, false]], 'two login roles with no special attribute');
});

t.test('the owner migrates and grants', async (t) => {
  execFileSync(process.execPath, [CLI, 'migrate'], { env: { PATH: process.env.PATH, DATABASE_URL: urlOf('pgfeed_owner') }, stdio: 'pipe' });
  const [{ rows }] = await runAs(urlOf(null), `SELECT nspowner::regrole::text AS owner FROM pg_namespace WHERE nspname = 'pgfeed'`);
  t.equal(rows[0].owner, role.pgfeed_owner, 'the owner owns the pgfeed schema');
  await runAs(urlOf('pgfeed_owner'), localise(grants));
  await runAs(urlOf('pgfeed_owner'), localise(rowSecurity));
});

const daemonUrl = urlOf('pgfeed_daemon');
const writer = urlOf('app_writer');

t.test('the table owner tracks, the writer writes and emits, the daemon streams one project', async (t) => {
  await runAs(urlOf('app_owner'), `CREATE TABLE orders (id serial PRIMARY KEY, tenant text NOT NULL);
    GRANT SELECT, INSERT ON orders TO ${role.app_writer}; GRANT USAGE ON SEQUENCE orders_id_seq TO ${role.app_writer};
    SELECT pgfeed.track('orders', 'tenant')`);
  await runAs(writer, `INSERT INTO orders (tenant) VALUES ('acme'), ('beta')`);
  await runAs(writer, `SELECT pgfeed.emit('acme', 'hello', '{"n": 1}')`);
  const daemon = await startDaemon(t, daemonUrl, { PGFEED_MIGRATE: 'false', PGFEED_ROW_SECURITY: 'true' });
  t.equal((await getJson(`${daemon.base}/readyz`)).status, 200, 'ready');
  const page = await getJson(`${daemon.base}/v1/changes?project=acme`);
  t.match(page.body.events, [{ type: 'orders.insert', data: { tenant: 'acme' } }, { type: 'hello', data: { n: 1 } }], 'both changes of acme are served (from Postgres, under the policy)');
  t.equal(page.body.events.length, 2, 'and nothing of beta');
  // Live: beta's event, then acme's marker; the stream must hold the marker and nothing of beta's.
  const stream = await connectSse(`${daemon.base}/v1/events?project=acme&after=now`);
  t.teardown(() => stream.close());
  await stream.waitFor((c) => c.retry !== null, 5_000, 'the stream to open');
  const client = { query: (sql: string, values?: unknown[]) => runAs(writer, sql, values).then((r) => r[0]) };
  await emit(client, 'beta', 'secret');
  const [marker] = await emit(client, 'acme', 'marker');
  await stream.waitFor((c) => c.seqs.includes(marker), 10_000, 'the marker');
  t.same(stream.events.filter((e) => e.id !== null).map((e) => e.json.type), ['marker'], 'the live stream has the marker alone');
  // Resuming from a cursor: the lookup runs under the policy too.
  const resumed = await getJson(`${daemon.base}/v1/changes?project=acme&after=${page.body.events[0].seq}`);
  t.same(resumed.body.events.map((e: { type: string }) => e.type), ['hello', 'marker'], 'a resume after the first event');
});

t.test('the daemon role is refused everything else', async (t) => {
  const refused = async (sql: string, what: string) => t.rejects(runAs(daemonUrl, sql), { code: '42501' }, what);
  // With its seq given, the insert needs no privilege on the sequence: only the one on the table is tested.
  await refused(`INSERT INTO pgfeed.change_log (seq, project, type) VALUES (0, 'acme', 'forged')`, 'writing the log');
  await refused(`UPDATE pgfeed.change_log SET project = 'beta'`, 'updating it');
  await refused(`DELETE FROM pgfeed.change_log`, 'deleting from it');
  await refused(`UPDATE pgfeed.settings SET notify = false`, 'changing the settings');
  await refused(`SELECT * FROM pgfeed.tracked`, 'reading the tracked tables');
  await refused(`SELECT * FROM public.orders`, "reading the application's tables");
  await refused(`CREATE TABLE pgfeed.mine (x int)`, 'creating in the pgfeed schema');
  const [{ rows }] = await runAs(daemonUrl, `SELECT count(*)::int AS n FROM pgfeed.change_log`);
  t.equal(rows[0].n, 0, 'and, outside a transaction naming a project, it reads no row of the log');
});

t.test('the daemon role cannot migrate, and a daemon without the row-security setting is refused', async (t) => {
  await t.rejects(startDaemon(t, daemonUrl, { PGFEED_ROW_SECURITY: 'true' }), { message: /exited with 1[^]*permission denied/ }, 'serve that migrates (the default) stops at the first statement');
  await t.rejects(startDaemon(t, daemonUrl, { PGFEED_MIGRATE: 'false' }), { message: /exited with 2[^]*PGFEED_ROW_SECURITY=true/ }, 'serve without row security, for a role the policies bind');
  await t.rejects(startDaemon(t, urlOf('pgfeed_owner'), { PGFEED_ROW_SECURITY: 'true' }), { message: /exited with 2[^]*owns pgfeed.change_log/ }, 'serve with row security as the owner, whom no policy binds');
});

t.test('the daemon role prunes by its rules, and mints and redeems stream tickets', async (t) => {
  const owner = urlOf('pgfeed_owner');
  const count = async () => (await runAs(owner, `SELECT count(*)::int AS n FROM pgfeed.change_log`))[0].rows[0].n as number;
  const client = { query: (sql: string, values?: unknown[]) => runAs(writer, sql, values).then((r) => r[0]) };
  const written = await emit(client, 'acme', 'old', 3);
  const before = await count();
  const daemon = await startDaemon(t, daemonUrl, {
    PGFEED_MIGRATE: 'false', PGFEED_ROW_SECURITY: 'true', PGFEED_RETENTION_ROWS: '2', PGFEED_PRUNE_INTERVAL_MS: '100', ...AUTH_ENV,
  });
  // The rule it was given is written (an UPDATE of pgfeed.retention), and pgfeed.prune() runs as the owner.
  await waitUntil(async () => (await count()) <= 2, 10_000, 'the daemon to prune all but the newest two seqs');
  t.ok(before > 2, `${before} rows before, at most 2 after`);
  const gone = await getJson(`${daemon.base}/v1/changes?project=acme&after=${written[0]}`, { authorization: `Bearer ${await token({ projects: ['acme'] })}` });
  t.equal(gone.status, 410, 'a cursor below the pruned position is expired');
  t.equal(gone.body.error.code, 'cursor_expired');

  const res = await fetch(`${daemon.base}/v1/tickets`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await token({ projects: ['acme'] })}`, 'content-type': 'application/json' },
    body: JSON.stringify({ project: 'acme' }),
  });
  const minted = (await res.json()) as { ticket: string };
  t.equal(res.status, 201, `a ticket is minted (an INSERT into pgfeed.tickets): ${JSON.stringify(minted)}`);
  const { ticket } = minted;
  const stream = await connectSse(`${daemon.base}/v1/events?project=acme&after=now&ticket=${encodeURIComponent(ticket)}`);
  t.teardown(() => stream.close());
  await stream.waitFor((c) => c.retry !== null, 5_000, 'the stream the ticket opens');
  const [marker] = await emit(client, 'acme', 'marker');
  await stream.waitFor((c) => c.seqs.includes(marker), 10_000, 'the marker on the ticket stream');
  t.pass('the ticket was redeemed (an UPDATE of pgfeed.tickets) and its stream serves');
});
