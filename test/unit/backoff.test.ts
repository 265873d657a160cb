// One retry policy: exponential ceilings, a cap, and full jitter below the
// ceiling, so that streams and replicas that failed together retry apart.
import t from 'tap';
import { backoffDelay, type Backoff } from '../../src/backoff.js';

const policy: Backoff = { baseMs: 200, capMs: 5_000 };
/** The ceiling is what a draw of (almost) 1 gives. */
const ceiling = (attempt: number) => backoffDelay(policy, attempt, () => 1);

t.test('ceilings double from the base and stop at the cap', async (t) => {
  t.same([0, 1, 2, 3, 4, 5, 6, 7].map(ceiling), [200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
  t.equal(ceiling(1_000), 5_000, 'a huge attempt number stays at the cap');
  t.equal(backoffDelay(policy, 3, () => 0), 0, 'a draw of 0 waits not at all');
  t.equal(backoffDelay(policy, 3, () => 0.5), 800, 'the draw scales the ceiling');
});

t.test('every delay lies within [0, ceiling]', async (t) => {
  for (let attempt = 0; attempt < 12; attempt++) {
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(policy, attempt);
      if (!(d >= 0 && d <= ceiling(attempt))) t.fail(`attempt ${attempt}: ${d} ms is outside [0, ${ceiling(attempt)}]`);
    }
  }
  t.pass('2400 draws in bounds');
});

t.test('full jitter: delays of one attempt spread over the whole range', async (t) => {
  const n = 2_000;
  const top = ceiling(4);
  const draws = Array.from({ length: n }, () => backoffDelay(policy, 4));
  // Ten equal bins of [0, ceiling]: uniform draws put about 200 in each. A
  // formula without jitter (or with jitter only near the top) leaves most empty.
  const bins = new Array(10).fill(0);
  for (const d of draws) bins[Math.min(9, Math.floor((d / top) * 10))]++;
  for (const [i, count] of bins.entries()) t.ok(count > 120 && count < 280, `bin ${i} (${(i * top) / 10}–${((i + 1) * top) / 10} ms) holds ${count} of ${n}`);
  t.ok(new Set(draws).size > n * 0.99, 'almost every delay differs from the others');
});

t.test("the client's defaults and a configured factor: the documented delay sequences", async (t) => {
  const { DEFAULT_BACKOFF } = await import('../../src/client/feed.js');
  const seq = (p: Backoff) => [0, 1, 2, 3, 4, 5, 6, 7].map((a) => backoffDelay(p, a, () => 1));
  // docs/client.md and src/client/feed.ts write this sequence out.
  t.same(seq(DEFAULT_BACKOFF), [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  t.same(seq({ baseMs: 100, capMs: 10_000, factor: 3 }), [100, 300, 900, 2_700, 8_100, 10_000, 10_000, 10_000]);
  t.same(seq({ baseMs: 250, capMs: 1_000, factor: 1 }), [250, 250, 250, 250, 250, 250, 250, 250], 'factor 1: a constant ceiling');
  t.equal(backoffDelay({ baseMs: 100, capMs: 10_000, factor: 3 }, 1e9, () => 1), 10_000, 'a huge attempt number stays at the cap, at once');
});
