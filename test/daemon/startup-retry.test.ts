// A backend terminated during start-up delays the daemon; it must not end it.
// Regression: only the migration step retried; a query connection killed
// while Daemon.start() ran (its settings check or the tail's first read)
// made `pgfeed serve` print the error and exit 1. Found by npm run test:faults
// (a pg_terminate_backend of pgfeed:query landing during a restart).
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { startDaemon } from '../helpers/daemon.js';
import { terminateLockWaiters } from '../helpers/terminate.js';

t.test('a pgfeed:query backend killed during start-up is retried', async (t) => {
  const db = await testDatabase(t);
  // Hold the settings row so that start-up blocks on it with a known backend.
  const locker = await db.pool.connect();
  t.teardown(() => locker.release());
  await locker.query('BEGIN');
  await locker.query('LOCK TABLE pgfeed.settings IN ACCESS EXCLUSIVE MODE');
  const starting = startDaemon(t, db.url);
  starting.catch(() => {});
  const killed = await terminateLockWaiters(db.pool, 'pgfeed:query');
  t.ok(killed > 0, 'the start-up query was waiting on the lock and was terminated');
  await locker.query('ROLLBACK');
  const daemon = await starting;
  t.ok(daemon.port > 0, 'the daemon came up after all');
  const ready = await fetch(`${daemon.base}/readyz`);
  t.equal(ready.status, 200);
  t.equal(await daemon.stop('SIGTERM'), 0);
});
