import type { FeedEvent, Position } from '../interfaces.js';
import { isAfter } from '../position.js';

/**
 * The recent past of the feed, in delivery order, bounded by count and bytes.
 * It holds every event with a position in (start, end]; `start` moves forward
 * as old events are evicted. A subscriber at or after `start` can be served
 * from memory; one before it must read Postgres.
 */
export class Ring {
  private readonly buf: (FeedEvent | undefined)[];
  private first = 0; // index of the oldest event
  private count = 0;
  private bytesHeld = 0;
  private startPos: Position;

  constructor(
    private readonly maxEvents: number,
    private readonly maxBytes: number,
    start: Position,
  ) {
    this.buf = new Array(maxEvents);
    this.startPos = start;
  }

  get start(): Position {
    return this.startPos;
  }
  get size(): number {
    return this.count;
  }
  /** The same count, by the name an EventList has: eachSlab reads the ring as one (slabs.ts). */
  get length(): number {
    return this.count;
  }
  get bytes(): number {
    return this.bytesHeld;
  }

  covers(pos: Position): boolean {
    return !isAfter(this.startPos, pos);
  }

  push(ev: FeedEvent): void {
    while (this.count > 0 && (this.count >= this.maxEvents || this.bytesHeld + ev.frame.length > this.maxBytes)) this.evict();
    this.buf[(this.first + this.count) % this.maxEvents] = ev;
    this.count++;
    this.bytesHeld += ev.frame.length;
  }

  private evict(): void {
    const ev = this.buf[this.first]!;
    this.buf[this.first] = undefined;
    this.first = (this.first + 1) % this.maxEvents;
    this.count--;
    this.bytesHeld -= ev.frame.length;
    this.startPos = ev.pos;
  }

  at(i: number): FeedEvent {
    return this.buf[(this.first + i) % this.maxEvents]!;
  }

  /** Index of the first event after `pos` (binary search: positions only grow). */
  indexAfter(pos: Position): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (isAfter(this.at(mid).pos, pos)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}
