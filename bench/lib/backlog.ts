// Events written straight into the change log, without triggers: a large
// history to replay or to look cursors up in, built in seconds.

import type pg from 'pg';
import { PAYLOAD } from './sample-row.js';

const FILL_BATCH = 50_000;

/**
 * Writes events 1..n, 50k rows per transaction. `projectOf` is an SQL
 * expression of g, the event's number, that names its project.
 */
export async function fillLog(c: pg.Client, n: number, projectOf: string): Promise<void> {
  for (let from = 1; from <= n; from += FILL_BATCH) {
    const to = Math.min(n, from + FILL_BATCH - 1);
    await c.query(
      `INSERT INTO pgfeed.change_log (project, type, op, tbl, data)
       SELECT p, 'orders.insert', 'insert', 'public.orders',
              jsonb_build_object('id', g, 'project', p, 'sent_us', 0, 'payload', $1::text)
       FROM generate_series($2::bigint, $3::bigint) g, LATERAL (SELECT (${projectOf})::text AS p) x`,
      [PAYLOAD, from, to],
    );
  }
  await c.query('VACUUM ANALYZE pgfeed.change_log');
}
