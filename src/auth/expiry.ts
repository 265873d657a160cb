import { controlFrame } from '../feed/frame.js';
import type { Subscription } from '../feed/feed.js';

/** setTimeout's longest delay; a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Streams whose tokens were minted together must not all reconnect in the
 * same instant: each ends at a random moment up to this long before its
 * exp (and at most a tenth of the time it had left when it opened), never
 * after it.
 */
export const MAX_EXPIRY_SPREAD_MS = 5_000;

/** Calls `fn` after `ms`, however long; returns the cancel. */
function after(ms: number, fn: () => void): () => void {
  let timer: NodeJS.Timeout;
  const arm = (left: number) => {
    timer = setTimeout(() => (left > MAX_TIMER_MS ? arm(left - MAX_TIMER_MS) : fn()), Math.min(Math.max(0, left), MAX_TIMER_MS));
    timer.unref();
  };
  arm(ms);
  return () => clearTimeout(timer);
}

/**
 * Sends `pgfeed.expiring` `warningMs` before `expiresAt` (at once if the
 * stream opens later than that; never with warningMs 0), then
 * `pgfeed.expired` and the end of the stream within the spread before
 * `expiresAt`. Returns the cancel, for a stream that ends first.
 */
export function watchExpiry(sub: Subscription, expiresAt: number, warningMs: number): () => void {
  const now = Date.now();
  const spread = Math.min(MAX_EXPIRY_SPREAD_MS, Math.max(0, expiresAt - now) / 10);
  const endAt = expiresAt - Math.random() * spread;
  const at = new Date(expiresAt).toISOString();
  const cancels: (() => void)[] = [];
  const warnAt = Math.min(expiresAt - warningMs, endAt);
  if (warningMs > 0) cancels.push(after(warnAt - now, () => sub.signal(controlFrame('pgfeed.expiring', { expires_at: at }))));
  cancels.push(after(endAt - now, () => sub.signal(controlFrame('pgfeed.expired', { expired_at: at }), true)));
  return () => cancels.forEach((c) => c());
}
