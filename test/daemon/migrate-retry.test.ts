// Losing the migration connection at start-up delays the daemon; it must not
// crash it. Regression: the migrate() client had no 'error' listener, so when
// its backend went away pg emitted 'error' ("Connection terminated
// unexpectedly") with nobody listening, and the process died with an
// unhandled 'error' event. Found by npm run test:faults (start-race).
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { startDaemon } from '../helpers/daemon.js';
import { terminateLockWaiters } from '../helpers/terminate.js';
import { waitUntil } from '../helpers/wait.js';

const MIGRATION_LOCK = 0x70676665; // src/db/migrate.ts

t.test('a pgfeed:migrate backend killed while it waits for the migration lock', async (t) => {
  const db = await testDatabase(t);
  // Hold the migration lock so that the daemon's migrator waits with a known backend.
  const holder = await db.pool.connect();
  t.teardown(() => holder.release());
  await holder.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
  const starting = startDaemon(t, db.url);
  starting.catch(() => {});
  const killed = await terminateLockWaiters(db.pool, 'pgfeed:migrate');
  t.ok(killed > 0, 'the migrator was waiting on the lock and was terminated');
  // It retries: a new migrator waits on the lock again before it is released.
  await waitUntil(async () => (await db.pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = 'pgfeed:migrate' AND wait_event_type = 'Lock'`)).rows[0].n > 0, 10_000, 'the migrator to wait on the lock again');
  await holder.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
  const daemon = await starting;
  t.ok(daemon.port > 0, 'the daemon came up after all');
  t.equal((await fetch(`${daemon.base}/readyz`)).status, 200);
  t.equal(await daemon.stop('SIGTERM'), 0);
});
