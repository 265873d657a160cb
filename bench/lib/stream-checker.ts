// The exactly-once, in-order check. A stream's seq values are not monotonic
// (delivery order is (xid, seq)), so a client's received list is compared
// with the committed order read from Postgres at the end, not with itself.

export interface CheckResult {
  expected: number;
  received: number;
  lost: number;
  duplicated: number;
  misordered: number;
  /** Lost events that come before the last one received: skipped, not merely not yet sent. */
  holes: number;
  /** The expected position of the last event received in order (-1: none). */
  last: number;
}

/**
 * lost: committed events never received. duplicated: deliveries beyond the
 * first of an event. misordered: first deliveries that came before an event
 * committed earlier (an inversion against the expected order).
 * Events outside the expected list (another project, or written after the
 * expected list was read) count as neither.
 */
export function checkStream(expected: ArrayLike<number>, index: Map<number, number>, received: ArrayLike<number>): CheckResult {
  const seen = new Uint8Array(expected.length);
  let duplicated = 0;
  let misordered = 0;
  let last = -1;
  let firsts = 0;
  for (let i = 0; i < received.length; i++) {
    const pos = index.get(received[i]);
    if (pos === undefined) continue;
    if (seen[pos]) {
      duplicated++;
      continue;
    }
    seen[pos] = 1;
    firsts++;
    if (pos < last) misordered++;
    else last = pos;
  }
  let holes = 0;
  for (let i = 0; i < last; i++) if (!seen[i]) holes++;
  return { expected: expected.length, received: received.length, lost: expected.length - firsts, duplicated, misordered, holes, last };
}

export function indexOf(expected: ArrayLike<number>): Map<number, number> {
  const m = new Map<number, number>();
  for (let i = 0; i < expected.length; i++) m.set(expected[i], i);
  return m;
}
