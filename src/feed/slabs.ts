import type { ChangeRow, FeedEvent, Position } from '../interfaces.js';
import { frameText, unnamedParts } from './frame.js';

/**
 * Frames are joined into writes of up to this many bytes. One uWS write per
 * frame costs about 2 µs of chunk framing and copying, which made it the
 * whole cost of a catch-up (bench/README.md, "Findings"). The cap bounds
 * what a paused subscriber can leave buffered in uWS: one slab.
 */
export const SLAB_BYTES = 64 * 1024;

/** Frames of events [start, end) of a list, joined into one buffer. */
export interface Slab {
  readonly buf: Buffer;
  readonly start: number;
  readonly end: number;
  /** Position of the last event in the slab. */
  readonly last: Position;
}

/** A list of events in delivery order: an array, or the ring. */
export interface EventList {
  readonly length: number;
  at(i: number): FeedEvent | undefined;
}

/**
 * Cuts events [from, …) that `take` accepts into slabs of at most SLAB_BYTES
 * (a larger frame is a slab of its own), calling `emit` for each until it
 * returns false. Returns how many events were emitted. `named: false` leaves
 * out each frame's `event:` line (`?event_names=off`).
 */
export function eachSlab(
  events: EventList,
  from: number,
  take: (ev: FeedEvent) => boolean,
  emit: (slab: Slab) => boolean,
  named = true,
): number {
  const parts: Buffer[] = [];
  let bytes = 0;
  let start = from;
  let last: Position | null = null;
  let sent = 0;
  let n = 0;
  const flush = (end: number): boolean => {
    const buf = parts.length === 1 ? parts[0] : Buffer.concat(parts, bytes);
    parts.length = 0;
    bytes = 0;
    const ok = emit({ buf, start, end, last: last! });
    sent += n;
    n = 0;
    start = end;
    return ok;
  };
  for (let i = from; i < events.length; i++) {
    const ev = events.at(i)!;
    if (!take(ev)) continue;
    const frame = named ? [ev.frame] : unnamedParts(ev.frame);
    const size = named ? ev.frame.length : frame[0].length + frame[1].length;
    if (parts.length && bytes + size > SLAB_BYTES && !flush(i)) return sent;
    parts.push(...frame);
    bytes += size;
    n++;
    last = ev.pos;
  }
  if (parts.length) flush(events.length);
  return sent;
}

const shared = { named: new WeakMap<readonly FeedEvent[], Slab[]>(), unnamed: new WeakMap<readonly FeedEvent[], Slab[]>() };

/**
 * The slabs of a whole list, built once and shared by every subscriber that
 * takes all of it: a catch-up batch read for many reconnecting streams, or
 * the tail's new events for a project's audience.
 */
export function slabsOf(events: readonly FeedEvent[], named = true): Slab[] {
  const cache = named ? shared.named : shared.unnamed;
  let slabs = cache.get(events);
  if (!slabs) {
    const out: Slab[] = [];
    eachSlab(events, 0, () => true, (s) => (out.push(s), true), named);
    cache.set(events, (slabs = out));
  }
  return slabs;
}

/** Rows encoded straight into slabs: what a catch-up batch holds for a stream. */
export interface RowSlabs {
  readonly slabs: readonly Slab[];
  /** Bytes of every slab. */
  readonly bytes: number;
  /** Rows encoded, from the first: fewer than given when `maxBytes` cut them. */
  readonly taken: number;
}

/**
 * Encodes rows (in delivery order) into slabs of at most SLAB_BYTES, with
 * no Buffer per event: each slab is one string, encoded once. Stops before
 * the row that would take the total past `maxBytes` (the first row is always
 * taken, so that a stream moves on past an event larger than that).
 * `named: false` leaves out the `event:` lines (`?event_names=off`).
 */
export function rowSlabs(rows: readonly ChangeRow[], named: boolean, maxBytes: number): RowSlabs {
  const slabs: Slab[] = [];
  let text = '';
  let bytes = 0;
  let total = 0;
  let start = 0;
  let i = 0;
  const flush = () => {
    const r = rows[i - 1];
    slabs.push({ buf: Buffer.from(text), start, end: i, last: { xid: r.xid, seq: r.seq } });
    total += bytes;
    text = '';
    bytes = 0;
    start = i;
  };
  for (; i < rows.length; i++) {
    const row = rows[i];
    const frame = frameText(row, named);
    const size = Buffer.byteLength(frame);
    if (i > 0 && total + bytes + size > maxBytes) break;
    if (bytes && bytes + size > SLAB_BYTES) flush();
    text += frame;
    bytes += size;
  }
  if (bytes) flush();
  return { slabs, bytes: total, taken: i };
}
