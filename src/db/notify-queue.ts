import type pg from 'pg';
import { withDeadline } from '../deadline.js';
import type { Metrics } from '../metrics.js';

/** A scrape must answer well within Prometheus's default 10 s scrape timeout. */
const READ_DEADLINE_MS = 1_000;

/**
 * pg_notification_queue_usage(): the fraction (0 to 1) of the cluster's
 * NOTIFY queue in use. The queue fills when a listening session, anywhere in
 * the cluster, stops consuming; when it is full, every transaction that
 * notifies fails at COMMIT, and with it every write to a tracked table.
 * NaN when the server cannot be asked: the value is unknown, not zero.
 */
export function notifyQueueReader(pool: Pick<pg.Pool, 'query'>, metrics: Metrics): () => Promise<number> {
  return async () => {
    metrics.queries.inc({ kind: 'notify_queue' });
    try {
      const { rows } = await withDeadline(pool.query<{ usage: number }>('SELECT pg_notification_queue_usage() AS usage'), READ_DEADLINE_MS, 'pg_notification_queue_usage()');
      return Number(rows[0].usage);
    } catch {
      return NaN;
    }
  };
}
