import type pg from 'pg';

/**
 * Terminates the backends of `application` in this database once they wait
 * on a lock, polling for up to ~10 s. Returns how many were terminated.
 */
export async function terminateLockWaiters(pool: pg.Pool, application: string): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const r = await pool.query<{ ok: boolean }>(
      `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = $1 AND wait_event_type = 'Lock'`,
      [application],
    );
    const killed = r.rows.filter((x) => x.ok).length;
    if (killed > 0) return killed;
    await new Promise((res) => setTimeout(res, 50));
  }
  return 0;
}
