// NOTIFY is only a doorbell: a killed LISTEN connection and notifications
// that never come must cost latency, never events.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { runCli } from '../helpers/cli.js';
import { metric, startDaemon } from '../helpers/daemon.js';
import { connectSse, getJson } from '../helpers/sse-client.js';
import { waitUntil } from '../helpers/wait.js';

const db = await testDatabase(t);
const daemon = await startDaemon(t, db.url, { PGFEED_POLL_MS: '500' });

t.test('events still arrive after the LISTEN connection is terminated', async (t) => {
  const c = await connectSse(`${daemon.base}/v1/events?project=k&after=now`);
  t.teardown(() => c.close());
  await c.waitFor((c) => c.retry !== null);
  const sent: number[] = [];
  const emit = async () => sent.push(Number((await db.pool.query(`SELECT pgfeed.emit('k', 'e', '{}') AS s`)).rows[0].s));
  await emit();
  await c.waitFor((c) => c.seqs.length === 1);
  for (let round = 0; round < 3; round++) {
    const killed = await db.pool.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pgfeed:listen' AND datname = current_database()`);
    t.equal(killed.rowCount, 1, `round ${round}: the LISTEN backend was terminated`);
    // Written while the listener is down or reconnecting: their NOTIFYs are lost.
    for (let i = 0; i < 5; i++) await emit();
    await c.waitFor((c) => c.seqs.length === sent.length, 10_000, 'events after the kill');
  }
  t.same(c.seqs, sent, 'none lost, none twice');
  await waitUntil(async () => (await getJson(`${daemon.base}/readyz`)).body.listen.connected === true, 10_000, 'LISTEN to be back');
  t.equal(await metric(daemon.base, 'pgfeed_listen_connected'), 1);
});

t.test('rows whose NOTIFY never comes are delivered by the safety poll', async (t) => {
  const c = await connectSse(`${daemon.base}/v1/events?project=quiet&after=now`);
  t.teardown(() => c.close());
  await c.waitFor((c) => c.retry !== null);
  const wakeups = await metric(daemon.base, 'pgfeed_notify_wakeups_total');
  // Straight into the log, in a transaction that never notifies.
  const { rows } = await db.pool.query<{ seq: string }>(
    `INSERT INTO pgfeed.change_log (project, type, data) SELECT 'quiet', 'silent', jsonb_build_object('i', g)
     FROM generate_series(1, 50) g RETURNING seq`);
  await c.waitFor((c) => c.seqs.length === 50, 10_000, 'the silent rows');
  t.same(c.seqs, rows.map((r) => Number(r.seq)).sort((a, b) => a - b));
  t.equal(await metric(daemon.base, 'pgfeed_notify_wakeups_total'), wakeups, 'no notification was involved');
});

t.test('query connections killed under a subscriber: it still catches up', async (t) => {
  for (let i = 0; i < 600; i++) await db.pool.query(`SELECT pgfeed.emit('q', 'e', '{}')`);
  await db.pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pgfeed:query' AND datname = current_database()`);
  const c = await connectSse(`${daemon.base}/v1/events?project=q&after=0`);
  t.teardown(() => c.close());
  await c.waitFor((c) => c.seqs.length === 600, 15_000, 'the backlog');
  t.equal(new Set(c.seqs).size, 600);
});

t.test('PGFEED_NOTIFY=false: writers never notify, and the poll delivers everything', async (t) => {
  // The setting belongs to the database: migrate turns writer notifications off, and the daemon checks it.
  t.equal((await runCli(['migrate', '--notify', 'false'], { DATABASE_URL: db.url })).code, 0, 'pgfeed migrate --notify false');
  const quiet = await startDaemon(t, db.url, { PGFEED_NOTIFY: 'false', PGFEED_POLL_MS: '100' });
  t.teardown(async () => {
    await quiet.stop();
    await db.pool.query('UPDATE pgfeed.settings SET notify = true');
  });
  const c = await connectSse(`${quiet.base}/v1/events?project=nonotify&after=now`);
  t.teardown(() => c.close());
  await c.waitFor((c) => c.retry !== null);
  const sent: number[] = [];
  for (let i = 0; i < 20; i++) sent.push(Number((await db.pool.query(`SELECT pgfeed.emit('nonotify', 'e', '{}') AS s`)).rows[0].s));
  await c.waitFor((c) => c.seqs.length === 20, 10_000, 'polled events');
  t.same(c.seqs, sent);
  t.equal(await metric(quiet.base, 'pgfeed_notify_wakeups_total'), 0, 'no doorbell rang');
});
