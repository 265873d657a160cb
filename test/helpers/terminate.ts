import type pg from 'pg';
import { satisfied, waitUntil } from './wait.js';

/**
 * Terminates the backends of `application` in this database once they wait
 * on a lock, polling for up to ~10 s. Returns how many were terminated.
 */
export async function terminateLockWaiters(pool: pg.Pool, application: string): Promise<number> {
  let killed = 0;
  await satisfied(waitUntil(async () => {
    const r = await pool.query<{ ok: boolean }>(
      `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = $1 AND wait_event_type = 'Lock'`,
      [application],
    );
    killed = r.rows.filter((x) => x.ok).length;
    return killed > 0;
  }, 10_000, `a ${application} backend waiting on a lock`));
  return killed;
}
