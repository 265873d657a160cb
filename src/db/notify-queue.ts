import type pg from 'pg';
import { withDeadline } from '../deadline.js';
import type { Logger } from '../log.js';
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
export function notifyQueueReader(pool: Pick<pg.Pool, 'query'>, metrics: Metrics, observe: (usage: number) => void = () => {}): () => Promise<number> {
  return async () => {
    metrics.queries.inc({ kind: 'notify_queue' });
    let usage: number;
    try {
      const { rows } = await withDeadline(pool.query<{ usage: number }>('SELECT pg_notification_queue_usage() AS usage'), READ_DEADLINE_MS, 'pg_notification_queue_usage()');
      usage = Number(rows[0].usage);
    } catch {
      usage = NaN;
    }
    observe(usage);
    return usage;
  };
}

/**
 * Logs when the usage rises above `threshold` (a warning) and when it falls
 * back (info): once per crossing, however often it is read. An unknown
 * reading (NaN) crosses nothing.
 */
export function queueCrossings(threshold: number, log: Logger): (usage: number) => void {
  let above = false;
  return (usage) => {
    if (Number.isNaN(usage) || usage > threshold === above) return;
    above = !above;
    if (above) log.warn({ usage, threshold }, 'the NOTIFY queue is filling: a listening session somewhere in the cluster is not consuming (see docs/deploy.md); when it is full, every write to a tracked table fails at COMMIT');
    else log.info({ usage, threshold }, 'the NOTIFY queue is back below the warning threshold');
  };
}
