// pgfeed.settings (channel, notify) belong to the database, not to a
// replica: `pgfeed migrate` writes them, and `serve` only checks them.
// Regression: every daemon wrote its own configuration there at start-up,
// so two replicas configured differently silently flipped them, and the
// other replica lost its notifications.
import pg from 'pg';
import t from 'tap';
import { emptyDatabase, testDatabase } from '../harness/db.js';
import { runCli } from '../helpers/cli.js';
import { metric, startDaemon } from '../helpers/daemon.js';
import { connectSse } from '../helpers/sse-client.js';

const db = await testDatabase(t);
async function settings(url = db.url): Promise<{ channel: string; notify: boolean }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query('SELECT channel, notify FROM pgfeed.settings')).rows[0];
  } finally {
    await c.end();
  }
}
/** `pgfeed serve` expected to refuse: it must exit, well before the timeout. */
const serveRefused = (url: string, env: Record<string, string>) => runCli(['serve'], { DATABASE_URL: url, PGFEED_PORT: '0', ...env }, 15_000);

t.test('serve refuses to start when its configuration disagrees, with one line naming the fix', async (t) => {
  const r = await serveRefused(db.url, { PGFEED_NOTIFY: 'false' });
  t.equal(r.code, 2, 'exit 2, as for any configuration error');
  const lines = r.stderr.split('\n').filter(Boolean);
  t.equal(lines.length, 1, `one line on stderr: ${JSON.stringify(r.stderr)}`);
  t.match(lines[0], /^pgfeed: pgfeed\.settings has channel pgfeed and notify true/);
  t.ok(lines[0].includes('run pgfeed migrate --channel pgfeed --notify false'), `it names the command that fixes it: ${lines[0]}`);
  t.same(await settings(), { channel: 'pgfeed', notify: true }, 'the settings are left as they were');
});

t.test('a second daemon with other settings does not flip them under a running one', async (t) => {
  const first = await startDaemon(t, db.url);
  const c = await connectSse(`${first.base}/v1/events?project=flip&after=now`);
  t.teardown(() => c.close());
  await c.waitFor((c) => c.retry !== null);
  const r = await serveRefused(db.url, { PGFEED_CHANNEL: 'flipped' });
  t.equal(r.code, 2, 'the second daemon refused to start');
  t.same(await settings(), { channel: 'pgfeed', notify: true }, 'the settings are still the first daemon\'s');
  // The first daemon still hears the writers: its doorbell rings for a new event.
  const wakeups = await metric(first.base, 'pgfeed_notify_wakeups_total');
  const seq = Number((await db.pool.query(`SELECT pgfeed.emit('flip', 'e', '{}') AS s`)).rows[0].s);
  await c.waitFor((c) => c.seqs.includes(seq), 10_000, 'the new event');
  t.ok((await metric(first.base, 'pgfeed_notify_wakeups_total')) > wakeups, 'it came with a NOTIFY on the first daemon\'s channel');
  t.equal(await first.stop(), 0);
});

t.test('migrate writes the settings it is given, and a daemon configured alike then starts', async (t) => {
  let r = await runCli(['migrate', '--database-url', db.url, '--channel', 'other']);
  t.equal(r.code, 0, `migrate --channel exits 0: ${r.stderr}`);
  t.same(await settings(), { channel: 'other', notify: true }, '--channel written, notify left as it was');
  r = await runCli(['migrate'], { DATABASE_URL: db.url, PGFEED_NOTIFY: 'false' });
  t.equal(r.code, 0);
  t.same(await settings(), { channel: 'other', notify: false }, 'PGFEED_NOTIFY written the same way as its flag');
  r = await runCli(['migrate'], { DATABASE_URL: db.url });
  t.equal(r.code, 0);
  t.same(await settings(), { channel: 'other', notify: false }, 'migrate with neither leaves both');
  r = await runCli(['migrate', '--database-url', db.url, '--notify', 'true']);
  t.equal(r.code, 0);
  t.teardown(() => db.pool.query(`UPDATE pgfeed.settings SET channel = 'pgfeed', notify = true`));

  const d = await startDaemon(t, db.url, { PGFEED_CHANNEL: 'other' });
  const c = await connectSse(`${d.base}/v1/events?project=other&after=now`);
  t.teardown(() => c.close());
  await c.waitFor((c) => c.retry !== null);
  const seq = Number((await db.pool.query(`SELECT pgfeed.emit('other', 'e', '{}') AS s`)).rows[0].s);
  await c.waitFor((c) => c.seqs.includes(seq), 10_000, 'the new event');
  t.ok((await metric(d.base, 'pgfeed_notify_wakeups_total')) > 0, 'the writers notify on the channel the daemon listens on');
  t.equal(await d.stop(), 0);
});

t.test('on a brand-new database, serve writes its own settings; a daemon configured otherwise then refuses', async (t) => {
  const url = await emptyDatabase(t);
  const d = await startDaemon(t, url, { PGFEED_CHANNEL: 'fresh', PGFEED_NOTIFY: 'false' });
  t.same(await settings(url), { channel: 'fresh', notify: false }, 'the daemon that created the schema wrote its settings');
  const r = await serveRefused(url, {});
  t.equal(r.code, 2, 'a daemon with the defaults refuses');
  t.same(await settings(url), { channel: 'fresh', notify: false });
  t.equal(await d.stop(), 0);
});
