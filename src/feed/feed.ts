import type { ReadScope } from '../db/row-security.js';
import { listProjects } from '../db/projects.js';
import type { Cursor, FeedEvent, Filter, Position } from '../interfaces.js';
import { isAfter } from '../position.js';
import { resolveCursor } from './cursor.js';
import type { Receiver } from './hub.js';
import type { Sink } from './sink.js';
import { Subscriber, type SubscriberDeps, type SubscriberState } from './subscriber.js';
import { filterMatcher } from './type-filter.js';

/** The services the feed is made of. */
export interface FeedDeps extends SubscriberDeps {
  /** Where a cursor is looked up. */
  readonly reads: ReadScope;
}

export interface FeedSettings {
  readonly slowClientTimeoutMs: number;
  /** Most bytes of frames a catching-up stream holds (StreamOptions.catchupBytes). */
  readonly catchupStreamBytes: number;
}

/** Events after a position, in delivery order. `hasMore`: the page was cut at its limit. */
export interface Page {
  readonly events: readonly FeedEvent[];
  readonly hasMore: boolean;
  /** Retention removed events after the position before they could be read: the page is empty, and the client must start over. */
  readonly reset?: { readonly earliest: number | null };
}

/** An open stream: its state (a paused one has frames queued) and how to stop it. */
export interface Subscription {
  readonly state: SubscriberState;
  /** The last position delivered. */
  readonly position: Position;
  /** Bytes of frames it holds while catching up (read and not yet sent); at most PGFEED_CATCHUP_STREAM_BYTES. */
  readonly heldBytes: number;
  /**
   * Sends a control frame (controlFrame() in frame.ts), after every frame
   * already written, a paused stream's queued ones included. `end`: then end
   * the stream, as pgfeed does for reset, expired and revoked.
   */
  signal(frame: Buffer, end?: boolean): void;
  close(): void;
}

/**
 * The feed as the HTTP layer sees it, and the only part of src/feed/ it
 * calls: resolve a cursor, then stream from the position, read a page after
 * it, or wait for the next events after it. Where the events come from (the
 * ring, Postgres, the tail's live pushes) stays in here.
 */
export class Feed {
  constructor(
    private readonly deps: FeedDeps,
    private readonly settings: FeedSettings,
  ) {}

  /** For the operator view: the catch-up queries running and waiting, and the projects that have events. */
  get catchupLoad(): { readonly running: number; readonly waiting: number } {
    return this.deps.catchup.load;
  }

  projects(limit: number): Promise<string[]> {
    this.deps.metrics.queries.inc({ kind: 'projects' });
    // An operator's view of every project: read as the shared tail reads, not scoped to one.
    return this.deps.reads.allProjects((db) => listProjects(db, limit));
  }

  /** The position a client's cursor stands for, in its project. Throws CursorError for an unknown or expired seq. */
  position(cursor: Cursor, project: string): Promise<Position> {
    return resolveCursor(cursor, project, this.deps.reads, this.deps.tail, this.deps.metrics);
  }

  /** Writes every event after `from` that passes the filter to `sink`, until closed. `eventNames: false` leaves `event:` lines out. */
  subscribe(sink: Sink, filter: Filter, from: Position, eventNames: boolean): Subscription {
    const { slowClientTimeoutMs, catchupStreamBytes: catchupBytes } = this.settings;
    const sub = new Subscriber(this.deps, { slowClientTimeoutMs, eventNames, catchupBytes }, sink, filter, from);
    sub.start();
    return sub;
  }

  /**
   * Up to `limit` events after `pos`: from the ring when it covers pos and
   * fills the page, otherwise from Postgres. A short page from memory may only
   * mean the tail has not read the newest commits yet, and a page must be fresh.
   */
  async page(pos: Position, filter: Filter, limit: number): Promise<Page> {
    const remembered = this.fromRing(pos, filter, limit + 1);
    if (remembered && remembered.length > limit) return { events: remembered.slice(0, limit), hasMore: true };
    let batch = await this.deps.catchup.read(pos, filter, limit);
    // A lagging standby's short page would tell the client it is caught up
    // while the tail already has more: the primary answers instead.
    if (batch.fromStandby && !batch.full && isAfter(this.deps.tail.head, batch.covered)) batch = await this.deps.catchup.read(pos, filter, limit, batch.covered);
    if (batch.reset) {
      this.deps.metrics.streamsReset.inc();
      return { events: [], hasMore: false, reset: batch.reset };
    }
    return { events: batch.events, hasMore: batch.full };
  }

  /**
   * Calls `deliver` once, with up to `limit` of the first events after `pos`
   * that the tail reads (or has read since the caller's page). Returns a
   * function that stops waiting; deliver is not called after it.
   */
  waitFor(pos: Position, filter: Filter, limit: number, deliver: (page: Page) => void): () => void {
    const takes = filterMatcher(filter);
    let waiting = true;
    const stop = () => {
      waiting = false;
      this.deps.hub.remove(receiver);
    };
    const offer = (events: readonly FeedEvent[]) => {
      if (!waiting || events.length === 0) return;
      stop();
      deliver({ events: events.slice(0, limit), hasMore: events.length > limit });
    };
    const receiver: Receiver = {
      project: filter.project,
      receive: (events) => offer(events.filter((e) => isAfter(e.pos, pos) && takes(e))),
      // The tail's pushes have a gap: answer empty, as at the deadline; the
      // next poll reads from its cursor and learns whether events were lost.
      rewind: () => {
        if (!waiting) return;
        stop();
        deliver({ events: [], hasMore: false });
      },
    };
    this.deps.hub.add(receiver);
    // The tail may have passed pos between the caller's page and registering: look once more.
    const missed = this.fromRing(pos, filter, limit + 1);
    if (missed) offer(missed);
    return stop;
  }

  /** Up to `max` events after pos from the ring, or null when the ring does not reach back to pos. */
  private fromRing(pos: Position, filter: Filter, max: number): FeedEvent[] | null {
    const ring = this.deps.tail.ring;
    if (!ring.covers(pos)) return null;
    const takes = filterMatcher(filter);
    const out: FeedEvent[] = [];
    for (let i = ring.indexAfter(pos); i < ring.size && out.length < max; i++) {
      const ev = ring.at(i);
      if (takes(ev)) out.push(ev);
    }
    return out;
  }
}
