// Bounded waiting, for the tests, the fault suite and the bench: every wait
// has a deadline and says what it waited for when it gives up.

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A wait that gave up: its condition did not hold in time, or stopped making progress. */
export class WaitTimeout extends Error {}

export interface WaitOptions {
  /** Poll interval (default 50 ms). */
  intervalMs?: number;
  /** Give up early once `progressOf()` has not changed for this long. */
  stallMs?: number;
  progressOf?: () => number;
}

/**
 * Polls `cond` until it holds; throws a WaitTimeout naming `what` after
 * `timeoutMs`, or after `stallMs` without progress.
 */
export async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string, o: WaitOptions = {}): Promise<void> {
  const start = performance.now();
  let lastProgress = o.progressOf?.() ?? 0;
  let lastChange = start;
  while (!(await cond())) {
    const now = performance.now();
    if (now - start > timeoutMs) throw new WaitTimeout(`timed out after ${timeoutMs} ms waiting for ${what}`);
    if (o.stallMs !== undefined && o.progressOf) {
      const p = o.progressOf();
      if (p !== lastProgress) {
        lastProgress = p;
        lastChange = now;
      } else if (now - lastChange > o.stallMs) throw new WaitTimeout(`no progress for ${o.stallMs} ms waiting for ${what}`);
    }
    await sleep(o.intervalMs ?? 50);
  }
}

/** Whether a wait was satisfied, for callers that report a timeout rather than fail on it. */
export function satisfied(wait: Promise<void>): Promise<boolean> {
  return wait.then(
    () => true,
    (err) => {
      if (err instanceof WaitTimeout) return false;
      throw err;
    },
  );
}
