import type { Batch, FeedEvent, Filter, Position, ServerIdentity } from '../interfaces.js';
import { namedQuery } from '../db/query-errors.js';
import { readBatch, BATCH_SIZE } from '../db/read-batch.js';
import type { ReadScope } from '../db/row-security.js';
import { readHolds } from '../db/server-identity.js';
import type { FallbackReason, Standby, Standbys } from '../db/standbys.js';
import { comparePositions, formatPosition } from '../position.js';
import { encodeEvent } from './frame.js';
import type { Metrics } from '../metrics.js';
import { rowSlabs, type Slab } from './slabs.js';

export interface CatchupBatch extends Omit<Batch, 'rows'> {
  readonly events: readonly FeedEvent[];
  /** A standby answered: its rows may be written only while it follows the tail's server. */
  readonly fromStandby: boolean;
}

/**
 * A catch-up batch as a stream writes it: its frames joined into slabs, no
 * Buffer or JSON kept per event. Cut at a byte budget, it is `full` and
 * `covered` ends at its last slab: the stream reads on from there.
 */
export interface StreamBatch extends Omit<Batch, 'rows'> {
  readonly slabs: readonly Slab[];
  /** Bytes of all its slabs. */
  readonly bytes: number;
  /** As CatchupBatch's. */
  readonly fromStandby: boolean;
}

/**
 * Catch-up reads from Postgres for subscribers behind the ring.
 * - single-flight: subscribers at the same position with the same filter
 *   share one query (a reconnect storm resumes from few distinct cursors);
 * - capped: at most `concurrency` queries run; the rest wait their turn;
 * - on a hot standby when one is configured and can bring the stream
 *   something: it follows the tail's server (same system, same timeline)
 *   and its horizon is past what the stream already has. Otherwise, or when
 *   the standby fails or turns out not to follow any more, on the primary.
 */
export class Catchup {
  private readonly inflight = new Map<string, Promise<unknown>>();
  private running = 0;
  private readonly queue: (() => void)[] = [];

  constructor(
    private readonly reads: ReadScope,
    private readonly concurrency: number,
    private readonly metrics: Metrics,
    /** Standbys for the reads, with the identity of the server the tail reads from; none: every read on the primary. */
    private readonly standbys?: { readonly list: Standbys; readonly tail: () => ServerIdentity | undefined },
  ) {}

  /** Catch-up queries running, and waiting for a slot. */
  get load(): { readonly running: number; readonly waiting: number } {
    return { running: this.running, waiting: this.queue.length };
  }

  /**
   * Up to `limit` events after `pos`, each encoded on its own (a page of
   * /v1/changes). `known` (at or after pos): the caller already has every
   * row of its filter up to there, from an earlier read's horizon; a standby
   * whose horizon is not past it has nothing more to give, so the primary
   * answers (docs/ordering.md, "Standbys and failover").
   */
  read(pos: Position, filter: Filter, limit = BATCH_SIZE, known: Position = pos): Promise<CatchupBatch> {
    return this.shared(`page\0${limit}`, pos, filter, limit, known, ({ rows, ...rest }, fromStandby) => ({ ...rest, events: rows.map(encodeEvent), fromStandby }));
  }

  /**
   * The next batch of a stream after `pos`, as slabs of at most `maxBytes` in
   * all (at least one event). `named: false` leaves out `event:` lines.
   * `known` as for read().
   */
  stream(pos: Position, filter: Filter, named: boolean, maxBytes: number, known: Position = pos): Promise<StreamBatch> {
    return this.shared(`stream\0${+named}\0${maxBytes}`, pos, filter, BATCH_SIZE, known, ({ rows, ...rest }, fromStandby) => {
      const { slabs, bytes, taken } = rowSlabs(rows, named, maxBytes);
      if (taken === rows.length) return { ...rest, slabs, bytes, fromStandby };
      // Cut by bytes: more follows, from the last slab's last event.
      return { ...rest, slabs, bytes, fromStandby, full: true, covered: slabs[slabs.length - 1].last };
    });
  }

  /** One query for every caller asking the same (`shape`, position, filter, known) while it runs. */
  private shared<T>(shape: string, pos: Position, filter: Filter, limit: number, known: Position, encode: (batch: Batch, fromStandby: boolean) => T): Promise<T> {
    const beyond = comparePositions(known, pos) > 0 ? `\0${formatPosition(known)}` : '';
    const key = `${shape}\0${filter.project}\0${filter.types.join(',')}\0${formatPosition(pos)}${beyond}`;
    const shared = this.inflight.get(key) as Promise<T> | undefined;
    if (shared) {
      this.metrics.catchupShared.inc();
      return shared;
    }
    const p = this.slot(async () => {
      const standby = await this.fromStandby(pos, filter, limit, known);
      const batch = standby ?? (await this.fromServer(this.reads, 'primary', pos, filter, limit));
      return encode(batch, standby !== null);
    }).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private async fromServer(reads: ReadScope, server: string, pos: Position, filter: Filter, limit: number): Promise<Batch> {
    this.metrics.queries.inc({ kind: 'catchup' });
    const batch = await namedQuery(this.metrics, 'catchup', reads.project(filter.project, (db) => readBatch(db, pos, filter, limit)));
    this.metrics.catchupReads.inc({ server });
    return batch;
  }

  /** The batch from a standby, or null when the primary must answer (none fits, the read failed, or the standby no longer follows). */
  private async fromStandby(pos: Position, filter: Filter, limit: number, known: Position): Promise<Batch | null> {
    if (!this.standbys) return null;
    const { list, tail } = this.standbys;
    const picked = list.pick(known);
    if (typeof picked === 'string') return this.fallback(picked);
    const standby: Standby = picked;
    standby.running++;
    let batch: Batch;
    try {
      batch = await this.fromServer(standby.reads, standby.name, pos, filter, limit);
    } catch (err) {
      list.failed(standby, err);
      return this.fallback('failed');
    } finally {
      standby.running--;
    }
    list.observed(standby, batch.server, batch.horizon);
    const primary = tail();
    // Promoted, or on another timeline, since it was picked: its rows may be ones the primary never had.
    if (!primary || readHolds(batch.server, primary) !== 'holds') return this.fallback('untrusted');
    return batch;
  }

  private fallback(reason: FallbackReason): null {
    this.metrics.standbyFallbacks.inc({ reason });
    return null;
  }

  private async slot<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running < this.concurrency) this.running++;
    else {
      // Wait for a finishing read to hand its slot over (running stays the same).
      this.metrics.catchupQueued.inc();
      this.metrics.catchupWaiting.inc();
      await new Promise<void>((resolve) => this.queue.push(resolve));
      this.metrics.catchupWaiting.dec();
    }
    try {
      return await fn();
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.running--;
    }
  }
}
