// pgfeed_notify_queue_usage reports the cluster's NOTIFY queue as Postgres
// sees it. A session that LISTENs and then sits in an open transaction
// consumes nothing, so the queue holds every notification sent after it.
import pg from 'pg';
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { metric, startDaemon } from '../helpers/daemon.js';
import { waitUntil } from '../helpers/wait.js';

const db = await testDatabase(t);
const daemon = await startDaemon(t, db.url);

t.test('the gauge reads pg_notification_queue_usage() at each scrape', async (t) => {
  t.equal(await metric(daemon.base, 'pgfeed_notify_queue_usage'), 0, 'an empty queue reads 0');

  const stuck = new pg.Client({ connectionString: db.url });
  await stuck.connect();
  t.teardown(() => stuck.end());
  await stuck.query('LISTEN pgfeed_test_stuck');
  await stuck.query('BEGIN');
  // 8000-byte payloads: a handful fill whole queue pages, so the usage is above 0.
  for (let i = 0; i < 8; i++) await db.pool.query(`SELECT pg_notify('pgfeed_test_stuck', repeat('x', 7999))`);
  const { rows } = await db.pool.query<{ usage: number }>('SELECT pg_notification_queue_usage() AS usage');
  t.ok(rows[0].usage > 0, `the queue is in use (${rows[0].usage})`);
  t.equal(await metric(daemon.base, 'pgfeed_notify_queue_usage'), rows[0].usage, 'the gauge shows what Postgres reports');

  await stuck.query('COMMIT');
  await stuck.end();
  const drained = await db.pool.query<{ usage: number }>('SELECT pg_notification_queue_usage() AS usage');
  t.equal(await metric(daemon.base, 'pgfeed_notify_queue_usage'), drained.rows[0].usage, 'and follows it as the queue drains');
});

t.test('a queue that cannot be read is NaN, not 0, and /metrics still answers', async (t) => {
  const name = new URL(db.url).pathname.slice(1);
  // A database cannot refuse connections while the session asking is in it.
  const admin = new URL(db.url);
  admin.pathname = '/postgres';
  const other = new pg.Client({ connectionString: admin.href });
  await other.connect();
  const allow = (on: boolean) => other.query(`ALTER DATABASE "${name}" ALLOW_CONNECTIONS ${on}`);
  t.teardown(async () => {
    await allow(true);
    await other.end();
  });
  await allow(false);
  await other.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pgfeed:query'`);
  t.ok(Number.isNaN(await metric(daemon.base, 'pgfeed_notify_queue_usage')), 'the daemon cannot connect: NaN');
  await allow(true);
  t.equal(await metric(daemon.base, 'pgfeed_notify_queue_usage'), 0, 'read again once it can connect');
});

t.test('the log warns once when the usage crosses PGFEED_NOTIFY_QUEUE_WARN, and says when it falls back', async (t) => {
  // Half of the real queue (8 GB) cannot be filled in a test: a threshold that a few pages cross stands in.
  const watched = await startDaemon(t, db.url, { PGFEED_NOTIFY_QUEUE_WARN: '0.000001' });
  const warnings = () => watched.logs.filter((l) => String(l.msg).startsWith('the NOTIFY queue is filling'));
  const recoveries = () => watched.logs.filter((l) => String(l.msg).startsWith('the NOTIFY queue is back below'));
  const scrape = () => metric(watched.base, 'pgfeed_notify_queue_usage');
  t.equal(await scrape(), 0);

  const fill = async () => {
    const stuck = new pg.Client({ connectionString: db.url });
    await stuck.connect();
    await stuck.query('LISTEN pgfeed_test_stuck');
    await stuck.query('BEGIN');
    for (let i = 0; i < 8; i++) await db.pool.query(`SELECT pg_notify('pgfeed_test_stuck', repeat('x', 7999))`);
    return async () => {
      await stuck.query('COMMIT');
      await stuck.end();
    };
  };
  let drain = await fill();
  t.teardown(() => drain());
  // Each scrape reads the queue: three readings above the threshold, one warning.
  for (let i = 0; i < 3; i++) t.ok((await scrape()) > 0.000001, `scrape ${i + 1} reads the queue above the threshold`);
  await waitUntil(() => warnings().length > 0, 5_000, 'the warning');
  t.match(warnings()[0], { level: 40, usage: Number, threshold: 0.000001 }, 'at level warn, with the usage and the threshold');

  await drain();
  drain = async () => {};
  t.equal(await scrape(), 0, 'drained');
  // The daemon logged this after the three readings above: every line about them is in.
  await waitUntil(() => recoveries().length > 0, 5_000, 'the fall back below the threshold to be logged');
  t.equal(warnings().length, 1, 'one warning for the crossing, not one per reading');
  drain = await fill();
  t.ok((await scrape()) > 0.000001);
  await waitUntil(() => warnings().length === 2, 5_000, 'a new crossing to warn again');
  t.equal(recoveries().length, 1, 'the fall back was logged once');
});
