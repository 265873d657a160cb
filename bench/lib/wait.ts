// Time-bounded waiting: every bench run has a deadline.

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `probe` until it returns true, or until `timeoutMs` passed, or until
 * it made no progress (as reported by `progressOf`) for `stallMs`.
 * Returns whether it was satisfied.
 */
export async function waitUntil(
  probe: () => Promise<boolean>,
  o: { timeoutMs: number; intervalMs?: number; stallMs?: number; progressOf?: () => number },
): Promise<boolean> {
  const end = performance.now() + o.timeoutMs;
  let lastProgress = o.progressOf?.() ?? 0;
  let lastChange = performance.now();
  while (performance.now() < end) {
    if (await probe()) return true;
    if (o.stallMs !== undefined && o.progressOf) {
      const p = o.progressOf();
      if (p !== lastProgress) {
        lastProgress = p;
        lastChange = performance.now();
      } else if (performance.now() - lastChange > o.stallMs) return false;
    }
    await sleep(o.intervalMs ?? 100);
  }
  return false;
}
