import { backoffDelay, type Backoff } from '../backoff.js';
import { isUnreachable, namedQuery, queryFailure } from '../db/query-errors.js';
import type { Position, ServerIdentity } from '../interfaces.js';
import { readBatch, startPoint, BATCH_SIZE } from '../db/read-batch.js';
import { findBlocker, type Blocker } from '../db/horizon.js';
import { describeServer, sameRun } from '../db/server-identity.js';
import type { ReadScope } from '../db/row-security.js';
import { formatPosition, horizonPosition, maxPosition, START } from '../position.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { wallClockMs } from '../wall-clock.js';
import { observeRead } from './delivery-steps.js';
import { encodeEvent } from './frame.js';
import { Ring } from './ring.js';
import type { Hub } from './hub.js';

/** Up to 100 ms, 200 ms, 400 ms … then 5 s between failed reads (see backoff.ts). */
const READ_RETRY: Backoff = { baseMs: 100, capMs: 5_000 };

export interface TailOptions {
  readonly pollMs: number;
  readonly heldPollMs: number;
  readonly ringEvents: number;
  readonly ringBytes: number;
}

/**
 * The one shared reader. It advances `head` through change_log in batches of
 * 512, encodes each event once, appends it to the ring and hands it to the
 * hub. Its query count depends on commits, never on subscribers.
 *
 * It wakes on a NOTIFY (coalesced), on every listener (re)connect, on a slow
 * safety poll, and on a fast poll while rows wait behind the horizon, since
 * the transaction that finally releases them may never notify.
 */
export class Tail {
  ring!: Ring;
  private headPos!: Position;
  private lastRowPos!: Position;
  private serverNow!: ServerIdentity;
  private running = false;
  private again = false;
  private closed = false;
  private pollTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private heldTimer?: NodeJS.Timeout;
  private failures = 0;
  private idle: Promise<void> = Promise.resolve();
  private lastBlockerCheck = 0;
  /** When the first doorbell not yet answered by a read rang (wallClockMs), for the step timings. */
  private bell: number | null = null;

  /** Since when committed rows have waited behind the horizon (null: none wait). */
  heldSince: number | null = null;
  blocker: Blocker | null = null;
  /** The last read's error, cleared by the next success. */
  lastError: Error | null = null;

  constructor(
    private readonly reads: ReadScope,
    private readonly hub: Hub,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly opts: TailOptions,
    /** Told when rows begin or stop waiting behind the horizon (`heldSince`). */
    private readonly horizonChanged: () => void = () => {},
  ) {}

  get head(): Position {
    return this.headPos;
  }

  /** The Postgres server, run and timeline the tail reads from: its head and ring belong to them. */
  get server(): ServerIdentity {
    return this.serverNow;
  }

  /** The last real row read: a position safe to keep (see interfaces.ts, "last row"). */
  get lastRow(): Position {
    return this.lastRowPos;
  }

  /** Starts at the current horizon: the past is served from Postgres, the future from the ring. */
  async start(): Promise<void> {
    this.metrics.queries.inc({ kind: 'tail' });
    const first = await this.reads.allProjects((db) => startPoint(db));
    this.serverNow = first.server;
    this.lastRowPos = first.last ?? START;
    this.headPos = horizonPosition(first.horizon);
    // Nothing lies between the last final row and the horizon, and nothing
    // ever will: the ring may claim that range as covered.
    this.ring = new Ring(this.opts.ringEvents, this.opts.ringBytes, this.lastRowPos);
    this.pollTimer = setInterval(() => this.wake(), this.opts.pollMs);
    this.pollTimer.unref();
    this.wake();
  }

  /** Reads the table soon. `bell`: a doorbell rang at this time (wallClockMs); polls and reconnects pass none. */
  wake(bell?: number): void {
    if (this.closed) return;
    if (bell !== undefined) this.bell ??= bell;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.idle = this.run().finally(() => (this.running = false));
  }

  private async run(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.drain();
        this.failures = 0;
        this.lastError = null;
      } catch (err) {
        this.lastError = err as Error;
        this.failures++;
        const delay = backoffDelay(READ_RETRY, this.failures - 1);
        const failure = { ...queryFailure(err), retryInMs: Math.round(delay) };
        if (isUnreachable(err)) this.log.warn(failure, 'tail read failed; retrying');
        else this.log.error(failure, 'tail read failed for a reason other than the connection; retrying');
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => this.wake(), delay);
        return;
      }
    } while (this.again && !this.closed);
  }

  private async drain(): Promise<void> {
    let batch;
    do {
      this.metrics.queries.inc({ kind: 'tail' });
      // This read answers every doorbell rung so far.
      const bell = this.bell;
      this.bell = null;
      const sent = wallClockMs();
      batch = await namedQuery(this.metrics, 'tail', this.reads.allProjects((db) => readBatch(db, this.headPos, null, BATCH_SIZE)));
      const received = wallClockMs();
      if (this.closed) return;
      if (this.noticeRestart(batch.server)) {
        this.again = true; // read again at once, from the last row
        return;
      }
      if (batch.reset) this.skipPruned(batch.pruned);
      const events = batch.rows.map(encodeEvent);
      const encoded = wallClockMs();
      for (const ev of events) this.ring.push(ev);
      if (events.length) this.lastRowPos = events[events.length - 1].pos;
      this.headPos = batch.covered;
      if (events.length) {
        this.metrics.tailEvents.inc(events.length);
        // created_at of the newest row: how far behind the writers the tail reads.
        this.metrics.tailLag.set(Math.max(0, (Date.now() - Date.parse(batch.rows[batch.rows.length - 1].at)) / 1000));
      }
      this.metrics.ringEvents.set(this.ring.size);
      this.metrics.ringBytes.set(this.ring.bytes);
      // After the head moved: a stream at or past the old head must not take it for caught up.
      if (batch.reset) this.hub.rewind();
      const routed = this.hub.publish(events);
      if (events.length) observeRead(this.metrics, { written: batch.written ?? null, bell, sent, received, encoded, routed, done: wallClockMs() });
    } while (batch.full && !this.closed);
    this.trackHorizon(batch.held === true);
  }

  /**
   * After a crash restart or a failover, Postgres may reissue xids that were
   * assigned but never made durable (or never reached the promoted standby),
   * so rows can now commit below the horizon the tail had reached. It steps
   * back to its last real row and reads again from there.
   */
  private noticeRestart(server: ServerIdentity): boolean {
    if (sameRun(server, this.serverNow)) return false;
    const failover = server.timeline !== this.serverNow.timeline || server.system !== this.serverNow.system;
    this.log.warn({ before: describeServer(this.serverNow), now: describeServer(server) }, failover ? 'Postgres failed over to another timeline; the tail reads again from its last row' : 'Postgres restarted; the tail reads again from its last row');
    this.serverNow = server;
    this.headPos = this.lastRowPos;
    return true;
  }

  /**
   * Retention removed rows after the head before the tail read them (a row
   * rule can prune a big transaction while the tail is still reading it).
   * The ring restarts at the mark, so no one is served across the gap from
   * memory, and live streams read on from their own positions: their reads
   * check their project's mark, so only a stream that lost events is reset.
   */
  private skipPruned(mark: Position): void {
    this.metrics.tailGaps.inc();
    this.log.warn({ head: formatPosition(this.headPos), pruned: formatPosition(mark) }, 'retention removed rows before the tail read them; live streams re-read from their positions');
    this.ring = new Ring(this.opts.ringEvents, this.opts.ringBytes, mark);
    // The mark was a committed row: a position safe to keep (interfaces.ts, "last row").
    this.lastRowPos = maxPosition(this.lastRowPos, mark);
  }

  private trackHorizon(held: boolean): void {
    if (!held) {
      if (this.heldSince !== null) this.log.info({ heldMs: Date.now() - this.heldSince }, 'horizon moved; held rows released');
      const was = this.heldSince;
      this.heldSince = null;
      this.blocker = null;
      this.metrics.horizonAge.set(0);
      this.metrics.horizonBlocked.set(0);
      if (was !== null) this.horizonChanged();
      return;
    }
    const now = Date.now();
    if (this.heldSince === null) {
      this.heldSince = now;
      this.horizonChanged();
    }
    this.metrics.horizonAge.set((now - this.heldSince) / 1000);
    this.metrics.horizonBlocked.set(1);
    if (now - this.lastBlockerCheck >= 1_000) {
      this.lastBlockerCheck = now;
      // Off the read path: on a busy server rows are briefly held at almost
      // every read, and waiting for this query would delay the next one.
      void this.checkBlocker(now - this.heldSince);
    }
    clearTimeout(this.heldTimer);
    this.heldTimer = setTimeout(() => this.wake(), this.opts.heldPollMs);
  }

  /** Names the backend holding the horizon, for /readyz and the metrics. */
  private async checkBlocker(heldMs: number): Promise<void> {
    this.metrics.queries.inc({ kind: 'horizon' });
    try {
      const blocker = await findBlocker(this.reads.pool);
      // Rows released while it ran: nothing is held any more.
      if (this.heldSince === null) return;
      this.blocker = blocker;
      if (heldMs >= 5_000) this.log.warn({ heldMs, blocker }, 'rows held back by an open transaction');
    } catch (err) {
      // The pool is gone after close(): nothing to report then.
      if (!this.closed) this.log.warn({ err: (err as Error).message }, 'could not name the transaction holding the horizon');
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.retryTimer);
    clearTimeout(this.heldTimer);
    await this.idle.catch(() => {});
  }
}
