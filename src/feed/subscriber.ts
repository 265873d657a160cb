import { backoffDelay, type Backoff } from '../backoff.js';
import { isUnreachable, queryFailure } from '../db/query-errors.js';
import type { FeedEvent, Filter, Position, ServerIdentity } from '../interfaces.js';
import { readHolds } from '../db/server-identity.js';
import { comparePositions, formatPosition, isAfter, maxPosition } from '../position.js';
import { controlFrame } from './frame.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Catchup, StreamBatch } from './catchup.js';
import type { Hub, Receiver } from './hub.js';
import type { Sink } from './sink.js';
import type { Tail } from './tail.js';
import { filterMatcher } from './type-filter.js';
import { Ring } from './ring.js';
import { eachSlab, slabsOf, type EventList, type Slab } from './slabs.js';

/** How often a stream that read from a newer Postgres run (or timeline) than the tail's checks whether the tail has caught up, and for how long. */
const RESTART_RECHECK_MS = 20;
const RESTART_WAIT_MS = 10_000;

/** Up to 200 ms, 400 ms, 800 ms … then 5 s between failed catch-up reads (see backoff.ts). */
const CATCHUP_RETRY: Backoff = { baseMs: 200, capMs: 5_000 };

export type SubscriberState = 'catching_up' | 'live' | 'paused' | 'closed';

/** The services a stream reads from. */
export interface SubscriberDeps {
  readonly tail: Tail;
  readonly hub: Hub;
  readonly catchup: Catchup;
  readonly metrics: Metrics;
  readonly log: Logger;
}

export interface StreamOptions {
  /** A paused stream that makes no progress for this long is ended (the client resumes). */
  readonly slowClientTimeoutMs: number;
  /** Name each event by its type (`event:`); false sends every event unnamed, for `onmessage`. */
  readonly eventNames: boolean;
  /**
   * Most bytes of frames the stream holds while it catches up: batches read
   * and not yet written, plus what its sink could not send. Each batch takes
   * at most half of it (a single larger event is read alone).
   */
  readonly catchupBytes: number;
}

/** A batch partly written: its slabs from `next` on are still to go. */
interface Unfinished {
  readonly batch: StreamBatch;
  readonly next: number;
}

/**
 * One SSE stream's position and state.
 *
 *   catching_up ──(reached the ring / the head)──▶ live
 *        ▲                                           │ write() said backpressure
 *        └───────────────(socket drained)──── paused ◀┘
 *
 * It keeps one position, the last (xid, seq) it delivered, and delivers an
 * event only if the event is after it. That single rule makes switching
 * between Postgres batches, the ring and live pushes safe in any order
 * (the handoff invariant, docs/ordering.md).
 */
export class Subscriber implements Receiver {
  state: SubscriberState = 'catching_up';
  private pos: Position;
  private readonly takes: (ev: FeedEvent) => boolean;
  private lastProgress = Date.now();
  private stallTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private dbFailures = 0;
  private prefetch?: { pos: Position; batch: Promise<StreamBatch>; bytes?: number };
  private unfinished?: Unfinished;
  /**
   * Set after a short read whose horizon the tail has passed, where the ring
   * does not reach: everything for this filter up to it was delivered. The
   * next read goes where it can bring more (Catchup.read), not back to a
   * lagging standby that has nothing after it.
   */
  private coveredTo?: Position;

  constructor(
    private readonly deps: SubscriberDeps,
    private readonly options: StreamOptions,
    private readonly sink: Sink,
    readonly filter: Filter,
    from: Position,
  ) {
    this.pos = from;
    this.takes = filterMatcher(filter);
  }

  get project(): string {
    return this.filter.project;
  }

  get position(): Position {
    return this.pos;
  }

  /**
   * Bytes of frames this stream holds: the rest of a batch cut short by
   * backpressure, a prefetched batch (its share of the budget while it is
   * read), and what the sink could not send yet. At most `catchupBytes`.
   */
  get heldBytes(): number {
    // A live stream holds no batch, and its sink's count may be stale: a
    // write that pushed back is not followed by one that goes through once
    // nothing new is written (and a live stream that pushes back is paused).
    if (this.state === 'closed' || this.state === 'live') return 0;
    const p = this.prefetch;
    return this.unwrittenBytes() + (p ? (p.bytes ?? this.batchBytes) : 0);
  }

  /** What a batch may take: half of the stream's budget, so that one can be read while one is written. */
  private get batchBytes(): number {
    return Math.floor(this.options.catchupBytes / 2);
  }

  /** The unfinished batch's rest and the sink's unsent bytes: what the stream holds besides a prefetch. */
  private unwrittenBytes(): number {
    let n = this.sink.buffered;
    const u = this.unfinished;
    if (u) for (let i = u.next; i < u.batch.slabs.length; i++) n += u.batch.slabs[i].buf.length;
    return n;
  }

  start(): void {
    this.deps.metrics.subscribers.inc({ state: 'catching_up' });
    // In the hub before any replay: nothing can fall between replay and live.
    this.deps.hub.add(this);
    void this.pump();
  }

  private setState(next: SubscriberState): void {
    if (next === this.state) return;
    if (this.state !== 'closed') this.deps.metrics.subscribers.dec({ state: this.state });
    if (next !== 'closed') this.deps.metrics.subscribers.inc({ state: next });
    this.state = next;
    // Caught up: a batch read ahead is not needed (live pushes and the ring bring what follows).
    if (next === 'live') this.prefetch = undefined;
  }

  /** Live pushes from the tail. Ignored unless live: otherwise pump() will read them from the ring or Postgres. */
  receive(events: readonly FeedEvent[]): void {
    if (this.state !== 'live') return;
    // The hub hands each project's audience the same list: without a type
    // filter every event of it is wanted, so the shared slabs serve.
    this.writeEvents(events, this.filter.types.length === 0);
  }

  /**
   * Writes the events after the position, joined into slabs; returns false
   * if it paused on backpressure. `wantsAll`: every event of the list after
   * the position passes this subscriber's filter (its own catch-up batches,
   * or an unfiltered subscriber's live pushes), so a shared slab can be used.
   */
  private writeEvents(events: EventList, wantsAll: boolean): boolean {
    let ok = true;
    let sent = 0;
    const write = (slab: Slab): boolean => {
      ok = this.sink.write(slab.buf);
      this.pos = slab.last;
      return ok;
    };
    const from = this.firstAfter(events);
    const slabs = wantsAll && Array.isArray(events) ? slabsOf(events as FeedEvent[], this.options.eventNames) : null;
    const at = slabs ? slabs.findIndex((s) => s.start === from) : -1;
    if (slabs && at >= 0) {
      for (let i = at; i < slabs.length && ok; i++) {
        write(slabs[i]);
        sent += slabs[i].end - slabs[i].start;
      }
    } else {
      sent = eachSlab(events, from, this.takes, write, this.options.eventNames);
    }
    return this.wrote(sent, ok);
  }

  /** Counts what a write delivered, and pauses on backpressure. Returns `ok`. */
  private wrote(sent: number, ok: boolean): boolean {
    if (sent) {
      this.deps.metrics.delivered.inc(sent);
      this.lastProgress = Date.now();
    }
    if (!ok) this.pause();
    return ok;
  }

  /** Index of the first event after the position (lists are in delivery order). */
  private firstAfter(events: EventList): number {
    if (events instanceof Ring) return events.indexAfter(this.pos);
    let i = 0;
    while (i < events.length && !isAfter(events.at(i)!.pos, this.pos)) i++;
    return i;
  }

  private pause(): void {
    if (this.state === 'closed') return;
    this.setState('paused');
    // Only the position is kept; the frames stay in the ring or in Postgres.
    this.sink.onDrain(() => {
      if (this.state !== 'paused') return;
      this.lastProgress = Date.now();
      this.setState('catching_up');
      void this.pump();
    });
    this.armStallTimer();
  }

  private armStallTimer(): void {
    clearTimeout(this.stallTimer);
    const wait = this.options.slowClientTimeoutMs - (Date.now() - this.lastProgress);
    this.stallTimer = setTimeout(() => {
      if (this.state !== 'paused') return;
      if (Date.now() - this.lastProgress < this.options.slowClientTimeoutMs) return this.armStallTimer();
      this.deps.metrics.slowClosed.inc();
      this.deps.log.info({ project: this.project }, 'closing a stream that made no progress; it can resume with Last-Event-ID');
      this.close();
      this.sink.end();
    }, Math.max(0, wait));
    this.stallTimer.unref();
  }

  /** Moves toward live: from the ring when it covers the position, otherwise from Postgres. */
  private async pump(): Promise<void> {
    const { tail } = this.deps;
    while (this.state === 'catching_up') {
      // A batch cut short by backpressure is finished first: its rest is
      // after the position, final, and already in memory.
      let work = this.unfinished;
      if (!work) {
        const ring = tail.ring;
        if (ring.covers(this.pos)) {
          if (!this.writeEvents(ring, false)) return;
          // Every event up to the head is in the ring and was just offered.
          // Keep a real row, never the head itself (interfaces.ts, "last row").
          this.pos = maxPosition(this.pos, tail.lastRow);
          this.setState('live');
          return;
        }
        if (!isAfter(tail.head, this.pos)) {
          // A catch-up read ran ahead of the tail: live pushes at or below the
          // position are skipped until the tail passes it.
          this.setState('live');
          return;
        }
        let batch: StreamBatch;
        try {
          batch = await this.readAt(this.pos);
          this.dbFailures = 0;
          this.coveredTo = undefined;
        } catch (err) {
          if (this.state !== 'catching_up') return;
          this.dbFailures++;
          const delay = backoffDelay(CATCHUP_RETRY, this.dbFailures - 1);
          // A fault that is not the connection is retried too (the stream has
          // begun; ending it would only bring the client back), but loudly.
          const failure = { ...queryFailure(err), retryInMs: Math.round(delay) };
          if (isUnreachable(err)) this.deps.log.warn(failure, 'catch-up read failed; retrying');
          else this.deps.log.error(failure, 'catch-up read failed for a reason other than the connection; retrying');
          await this.wait(delay);
          continue;
        }
        if (this.state !== 'catching_up') return;
        // A standby that no longer follows the tail's server (promoted, on
        // another timeline, or the tail failed over) may hold rows that
        // server never got: none of them is written. Catchup routes the next
        // read away from it.
        if (batch.fromStandby && readHolds(batch.server, tail.server) !== 'holds') {
          this.prefetch = undefined;
          continue;
        }
        // Retention removed rows after the position before this read ran:
        // delivering what follows would skip them without a word.
        if (batch.reset) return this.reset(batch.reset.earliest);
        work = { batch, next: 0 };
      }
      this.unfinished = work;
      const { batch } = work;
      // A full batch means more to read: fetch the next one while this one
      // is written, if the budget has room for it.
      this.prefetchAfter(batch);
      // Every event of a catch-up batch passes this subscriber's filter.
      if (!this.writeSlabs(work)) return;
      this.unfinished = undefined;
      if (batch.full) continue;
      const holds = readHolds(batch.server, tail.server);
      if (holds !== 'holds') {
        // Postgres restarted or failed over between this read and the tail's
        // last one. A horizon from another server run says nothing about
        // this one: after a crash, rows can commit below it under reissued
        // xids. Read again from the position, a real row: at once if this
        // batch is the older (kept across the restart), else once the tail
        // has noticed it.
        if (holds === 'ahead') await this.awaitTail(batch.server);
        continue;
      }
      // Nothing more for this filter below the read's horizon (batch.covered).
      // If the tail has not read past it, live pushes bring the rest (those
      // at or below the position are skipped)…
      if (!isAfter(tail.head, batch.covered)) {
        this.setState('live');
        return;
      }
      // …otherwise resume from the ring, if it starts before that horizon.
      // Its start is a real row, so the position stays one.
      if (!isAfter(tail.ring.start, batch.covered)) this.pos = maxPosition(this.pos, tail.ring.start);
      // …or read again, from where this read's horizon has nothing more.
      else this.coveredTo = batch.covered;
    }
  }

  /**
   * Starts reading the batch after a full one, unless one is read already or
   * the stream holds more than a batch's share of its budget: a stream whose
   * client reads slowly waits with at most its budget in memory.
   */
  private prefetchAfter(batch: StreamBatch): void {
    if (!batch.full || this.prefetch || this.unwrittenBytes() > this.batchBytes) return;
    const pos = batch.covered;
    const next = this.read(pos);
    const p: NonNullable<Subscriber['prefetch']> = { pos, batch: next };
    // Handled when awaited; a stream that closes may never await it.
    next.then((b) => (p.bytes = b.bytes), () => {});
    this.prefetch = p;
  }

  /** Writes the slabs of a batch from `work.next`; false (and `unfinished` left at the rest) if it paused on backpressure. */
  private writeSlabs(work: Unfinished): boolean {
    const { slabs } = work.batch;
    let i = work.next;
    let ok = true;
    let sent = 0;
    for (; i < slabs.length && ok; i++) {
      ok = this.sink.write(slabs[i].buf);
      this.pos = slabs[i].last;
      sent += slabs[i].end - slabs[i].start;
    }
    if (!ok) this.unfinished = { batch: work.batch, next: i };
    return this.wrote(sent, ok);
  }

  /**
   * The tail skipped rows that retention removed before it read them (hub.ts):
   * a live stream reads on from its own position, where its own read tells
   * whether its project lost any. Other states read from Postgres anyway.
   */
  rewind(): void {
    if (this.state !== 'live') return;
    this.setState('catching_up');
    void this.pump();
  }

  /** Events the stream still needed are gone: it says so and ends; a resume from its position gets 410. */
  private reset(earliest: number | null): void {
    this.deps.metrics.streamsReset.inc();
    this.deps.log.info({ project: this.project, position: formatPosition(this.pos), earliest }, 'retention passed a stream\'s position; ending it with pgfeed.reset');
    this.signal(controlFrame('pgfeed.reset', { earliest: earliest === null ? null : String(earliest) }), true);
  }

  /** Waits, without reading, until the tail reads from `server`'s run or a later one (bounded). */
  private async awaitTail(server: ServerIdentity): Promise<void> {
    const { tail } = this.deps;
    tail.wake();
    const until = Date.now() + RESTART_WAIT_MS;
    while (readHolds(server, tail.server) === 'ahead' && this.state === 'catching_up' && Date.now() < until) {
      await this.wait(RESTART_RECHECK_MS);
    }
  }

  /** A pause inside pump(); close() cancels it, and the pump then never resumes. */
  private wait(ms: number): Promise<void> {
    return new Promise<void>((r) => (this.retryTimer = setTimeout(r, ms)));
  }

  /** The batch after `pos`: the prefetched one if it is for exactly this position. */
  private readAt(pos: Position): Promise<StreamBatch> {
    const p = this.prefetch;
    this.prefetch = undefined;
    if (p && comparePositions(p.pos, pos) === 0 && this.coveredTo === undefined) return p.batch;
    return this.read(pos, this.coveredTo);
  }

  /** `known`: see coveredTo and Catchup.read. */
  private read(pos: Position, known?: Position): Promise<StreamBatch> {
    return this.deps.catchup.stream(pos, this.filter, this.options.eventNames, this.batchBytes, known);
  }

  /**
   * A control frame goes straight to the sink: whatever the state, it follows
   * every frame written before it (uWS queues a paused stream's bytes in
   * order), and a catching-up stream writes its batches between awaits, never
   * across this call. It has no id, so the position does not move.
   */
  signal(frame: Buffer, end = false): void {
    if (this.state === 'closed') return;
    this.sink.write(frame);
    if (!end) return;
    this.close();
    this.sink.end();
  }

  close(): void {
    if (this.state === 'closed') return;
    this.setState('closed');
    clearTimeout(this.stallTimer);
    clearTimeout(this.retryTimer);
    this.prefetch = undefined;
    this.unfinished = undefined;
    this.deps.hub.remove(this);
  }
}
