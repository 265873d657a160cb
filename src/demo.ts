import type pg from 'pg';
import type { Logger } from './log.js';

/** `--demo`: a tracked table with a few changes a second, so a newcomer sees events at once. */
export async function startDemo(pool: pg.Pool, log: Logger): Promise<() => void> {
  await pool.query(`CREATE TABLE IF NOT EXISTS public.pgfeed_demo_orders (
      id bigserial PRIMARY KEY, project text NOT NULL DEFAULT 'demo', item text NOT NULL,
      qty int NOT NULL, status text NOT NULL DEFAULT 'new');
    SELECT pgfeed.track('public.pgfeed_demo_orders', 'project')`);
  const items = ['coffee', 'tea', 'bagel', 'muffin', 'juice'];
  let n = 0;
  const timer = setInterval(() => {
    n++;
    const item = items[n % items.length];
    const sql = n % 5 === 0
      ? `UPDATE public.pgfeed_demo_orders SET status = 'shipped' WHERE id = (SELECT max(id) FROM public.pgfeed_demo_orders)`
      : n % 7 === 0
        ? `SELECT pgfeed.emit('demo', 'demo_heartbeat', jsonb_build_object('n', ${n}))`
        : `INSERT INTO public.pgfeed_demo_orders (item, qty) VALUES ('${item}', ${1 + (n % 3)})`;
    pool.query(sql).catch((err: Error) => log.warn({ err: err.message }, 'demo write failed'));
  }, 400);
  timer.unref();
  log.info('demo: writing to public.pgfeed_demo_orders (project "demo") a few times a second');
  return () => clearInterval(timer);
}
