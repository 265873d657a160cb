/** How far the monotonic clock may drift from the wall clock before it is re-anchored. */
const MAX_DRIFT_MS = 5;

let anchor = performance.timeOrigin;
let checkedAt = 0;

/**
 * The wall clock in milliseconds, to the microsecond: Date.now() is whole
 * milliseconds, too coarse for steps of a fraction of one. It is the
 * monotonic clock anchored to the wall clock (comparable with Postgres's
 * created_at on the same host), re-anchored when NTP has moved the wall
 * clock away from it, checked at most once a second.
 */
export function wallClockMs(): number {
  const mono = performance.now();
  if (mono - checkedAt >= 1_000) {
    checkedAt = mono;
    const now = Date.now();
    if (Math.abs(anchor + mono - now) > MAX_DRIFT_MS) anchor = now - mono;
  }
  return anchor + mono;
}
