// pgfeed_delivery_step_seconds: the steps of one read, from the write to the
// sockets, tile its total. A transaction that sleeps before it commits gives
// the notify step (created_at, its start, to the doorbell) a known minimum.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { startDaemon } from '../helpers/daemon.js';
import { connectSse } from '../helpers/sse-client.js';

const STEPS = ['notify', 'wait', 'read', 'encode', 'hub', 'write'];
const SLEEP_S = 0.2;
const NAME = 'pgfeed_delivery_step_seconds';
const SAMPLE = new RegExp(`^${NAME}_(count|sum)\\{step="([a-z]+)"\\} (\\S+)$`);

/** The histogram's _count and _sum by step, from one scrape; throws if it is not exported at all. */
async function steps(base: string): Promise<Map<string, { count: number; sum: number }>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  if (!text.includes(`# TYPE ${NAME} histogram`)) throw new Error(`/metrics has no histogram ${NAME}`);
  const out = new Map<string, { count: number; sum: number }>();
  for (const line of text.split('\n')) {
    const m = SAMPLE.exec(line);
    if (!m) continue;
    const e = out.get(m[2]) ?? { count: 0, sum: 0 };
    e[m[1] as 'count' | 'sum'] = Number(m[3]);
    out.set(m[2], e);
  }
  return out;
}

t.test('one read: its steps are observed once, and add up to its total', async (t) => {
  const db = await testDatabase(t);
  // No safety poll during the test: the doorbell alone wakes the read.
  const daemon = await startDaemon(t, db.url, { PGFEED_POLL_MS: '60000' });
  const c = await connectSse(`${daemon.base}/v1/events?project=steps&after=now`);
  t.teardown(() => c.close());
  await c.waitFor((c) => c.retry !== null, 5000, 'the retry frame');

  await db.pool.query(`BEGIN; SELECT pgfeed.emit('steps', 'slow', '{}'); SELECT pg_sleep(${SLEEP_S}); COMMIT`);
  await c.waitFor((c) => c.seqs.length === 1, 10_000, 'the event');

  // Observed right after the writes returned, before the event could reach the client.
  const got = await steps(daemon.base);
  const of = (step: string) => got.get(step) ?? { count: 0, sum: 0 };
  for (const step of [...STEPS, 'total', 'oldest']) t.equal(of(step).count, 1, `${step}: one read observed`);
  t.ok(of('notify').sum >= SLEEP_S, `notify (${of('notify').sum} s) runs from the transaction's start, so it holds the sleep before COMMIT`);
  const parts = STEPS.reduce((a, step) => a + of(step).sum, 0);
  const total = of('total').sum;
  t.ok(total >= SLEEP_S, `total (${total} s) holds the sleep too`);
  t.ok(Math.abs(total - parts) < 0.001, `the steps (${parts} s) tile the total (${total} s)`);
  t.equal(of('oldest').sum, total, 'a one-row read: its oldest row is its newest');
});
