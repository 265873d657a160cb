/**
 * How long to wait before retry `attempt` (0 for the first retry): a random
 * delay from 0 up to min(cap, base * factor^attempt), "full jitter"; the
 * factor is 2 unless the policy says otherwise. With a base
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
  /** How much each ceiling grows over the one before; at least 1. Default 2. */
  readonly factor?: number;
}

export function backoffDelay(policy: Backoff, attempt: number, random: () => number = Math.random): number {
  // Multiplied up to the cap, not raised to a power: a huge attempt number neither overflows nor loops long.
  const factor = policy.factor ?? 2;
  let ceiling = policy.baseMs;
  for (let i = 0; i < attempt && ceiling < policy.capMs && factor > 1; i++) ceiling *= factor;
  ceiling = Math.min(policy.capMs, ceiling);
  return ceiling * random();
}
