/**
 * `work`, or a rejection once `ms` pass without an answer. A query on a pool
 * whose server went silent can wait for a connection indefinitely; a probe
 * (/readyz, a scrape) must answer regardless. The work itself is not
 * cancelled: it finishes or fails on its own.
 */
export async function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([work, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms)))]);
  } finally {
    // Every probe would otherwise leave a timer behind until it fires.
    clearTimeout(timer);
  }
}
