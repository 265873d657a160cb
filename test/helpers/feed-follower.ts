// A pgfeed/client feed iterated in the background, for tests that watch
// what it yields and how it ends while they act on the daemon.
import type { Feed } from '../../src/client/index.js';
import { waitUntil } from './wait.js';

/** Records the seqs the feed yields and how it ended; `until(n)` waits for n of them (by default for up to `timeoutMs`). */
export function follow(feed: Feed, timeoutMs = 20_000) {
  const seqs: number[] = [];
  let ended: { error: unknown } | null = null;
  const done = (async () => {
    try {
      for await (const ev of feed) seqs.push(ev.seq);
      ended = { error: null };
    } catch (error) {
      ended = { error };
    }
  })();
  return {
    seqs,
    done,
    get ended() { return ended; },
    until: (n: number, what: string, waitMs = timeoutMs) => waitUntil(() => seqs.length >= n, waitMs, `${what} (${seqs.length} when the wait began)`),
  };
}
