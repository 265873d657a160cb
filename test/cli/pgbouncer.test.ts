// doctor through a real PgBouncer: in transaction pooling LISTEN cannot
// work, and the LISTEN/NOTIFY round trip finds it; in session pooling it
// works. Needs Debian's pgbouncer package; skipped, saying so, without it.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { runCli } from '../helpers/cli.js';
import { pgbouncerMissing, startPgBouncer } from '../helpers/pgbouncer.js';

interface Check {
  check: string;
  ok: boolean;
  detail: string;
  fix: string | null;
}

const missing = pgbouncerMissing();
const doctor = async (url: string) => {
  const r = await runCli(['doctor', '--json'], { DATABASE_URL: url });
  return { code: r.code, checks: JSON.parse(r.stdout) as Check[] };
};

t.test('through a transaction-pooling PgBouncer: listen_notify ✗, exit 1', { skip: missing ?? false }, async (t) => {
  const db = await testDatabase(t);
  const url = await startPgBouncer(t, db.url, 'transaction');
  const { code, checks } = await doctor(url);
  t.equal(code, 1, 'exit 1');
  t.equal(checks.find((c) => c.check === 'connection')?.ok, true, 'queries get through');
  const c = checks.find((c) => c.check === 'listen_notify')!;
  t.equal(c.ok, false, c.detail);
  t.match(c.detail, /did not reach a LISTEN on another within 2000 ms: the connection goes through a transaction-pooling PgBouncer/);
  t.equal(c.fix, 'point DATABASE_URL at Postgres itself, or at a PgBouncer with pool_mode = session');
  t.same(checks.filter((c) => !c.ok).map((c) => c.check), ['listen_notify'], 'the only finding');
});

t.test('through a session-pooling PgBouncer: listen_notify ✓', { skip: missing ?? false }, async (t) => {
  const db = await testDatabase(t);
  const url = await startPgBouncer(t, db.url, 'session');
  const { code, checks } = await doctor(url);
  t.equal(checks.find((c) => c.check === 'listen_notify')?.ok, true);
  t.equal(code, 0, JSON.stringify(checks.filter((c) => !c.ok)));
});
