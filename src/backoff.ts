/**
 * How long to wait before retry `attempt` (0 for the first retry): a random
 * delay from 0 up to min(cap, base * 2^attempt), "full jitter". With a base
 * of 500 ms and a cap of 10 s the ceilings are
 *
 *   500 ms, 1 s, 2 s, 4 s, 8 s, 10 s, 10 s, …
 *
 * and each delay is drawn uniformly below its ceiling. The jitter is what
 * spreads retries out: after an outage, thousands of streams (or several
 * replicas) that failed together must not retry together.
 */
export interface Backoff {
  readonly baseMs: number;
  readonly capMs: number;
}

export function backoffDelay(policy: Backoff, attempt: number, random: () => number = Math.random): number {
  // 2^31 overflows nothing and is far past any cap: later attempts stay at the cap.
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt, 31));
  return ceiling * random();
}
