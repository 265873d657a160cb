// pgfeed revoke: pgfeed.revoke() from the command line, its time printed;
// a running daemon ends the subject's stream with pgfeed.revoked and
// refuses its older token. Bad input is one line and a non-zero exit.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { emit } from '../helpers/change-log.js';
import { jsonResult, oneLineError, runCli } from '../helpers/cli.js';
import { startDaemon } from '../helpers/daemon.js';
import { connectSse, getJson } from '../helpers/sse-client.js';
import { AUTH_ENV, bearer, token } from '../helpers/tokens.js';

const db = await testDatabase(t);
const env = { DATABASE_URL: db.url };
const revocation = async (subject: string) =>
  (await db.pool.query<{ reason: string; at: Date }>('SELECT reason, revoked_at AS at FROM pgfeed.revocations WHERE subject = $1', [subject])).rows[0];

t.test('revoke prints the revocation time, and --json the whole revocation', async (t) => {
  const r = await runCli(['revoke', 'user:42', '--reason', 'left the company'], env);
  t.equal(r.code, 0, r.stderr);
  const m = /^revoked user:42 at (\S+)\n$/.exec(r.stdout);
  t.ok(m, `one line with the time: ${JSON.stringify(r.stdout)}`);
  const row = await revocation('user:42');
  t.same(row.reason, 'left the company');
  t.equal(m?.[1], row.at.toISOString(), 'the time recorded in pgfeed.revocations');
  const doc = jsonResult(t, await runCli(['revoke', 'user:42', '--json'], env)) as Record<string, string>;
  const again = await revocation('user:42');
  t.same(doc, { subject: 'user:42', reason: '', revoked_at: again.at.toISOString() }, 'the latest revocation wins, without a reason');
  t.ok(again.at > row.at, 'and it is later');
});

t.test('a running daemon ends the subject\'s stream with pgfeed.revoked, and refuses its older token', async (t) => {
  const daemon = await startDaemon(t, db.url, AUTH_ENV);
  const old = await token({ sub: 'svc-billing', projects: ['billing'] });
  const other = await connectSse(`${daemon.base}/v1/events?project=billing&after=0`, bearer(await token({ sub: 'svc-other', projects: ['billing'] })));
  const c = await connectSse(`${daemon.base}/v1/events?project=billing&after=0`, bearer(old));
  const [first] = await emit(db.pool, 'billing', 'invoice');
  await c.waitFor((c) => c.seqs.includes(first), 10_000, 'the first event');
  const r = await runCli(['revoke', 'svc-billing', '--reason', 'key leaked', '--json'], env);
  const { revoked_at } = jsonResult(t, r) as { revoked_at: string };
  await c.waitFor((c) => c.closed, 10_000, 'the stream to end');
  t.same(c.events.at(-1)?.event, 'pgfeed.revoked', 'its last frame is pgfeed.revoked');
  t.same(c.events.at(-1)?.json, { type: 'pgfeed.revoked', reason: 'key leaked' }, 'with the reason');
  const refused = await getJson(`${daemon.base}/v1/events?project=billing`, bearer(old));
  t.equal(refused.status, 401);
  t.match(refused.body, { error: { code: 'token_revoked' } }, 'the old token is refused');
  t.match(JSON.stringify(refused.body), new RegExp(revoked_at.replace(/[.]/g, '\\.')), 'naming the revocation time printed');
  // The marker: another subject's stream goes on past the revocation.
  const [marker] = await emit(db.pool, 'billing', 'marker');
  await other.waitFor((o) => o.seqs.includes(marker), 10_000, "the other subject's stream to get the marker");
  t.notOk(other.closed, "another subject's stream is not ended");
  other.close();
});

t.test('an empty subject, and a database without pgfeed.revoke(), are one line and a non-zero exit', async (t) => {
  oneLineError(t, await runCli(['revoke', ''], env), 2, /needs a non-empty <subject>/);
  // A database migrated before 004: what revoke needs is not there.
  const old = await testDatabase(t);
  await old.pool.query('DROP FUNCTION pgfeed.revoke(text, text)');
  oneLineError(t, await runCli(['revoke', 'user:1'], { DATABASE_URL: old.url }), 1, /has no pgfeed\.revoke\(\) \(migration 004\); run pgfeed migrate first/);
  t.same((await old.pool.query('SELECT subject FROM pgfeed.revocations')).rows, [], 'nothing was recorded there');
});
