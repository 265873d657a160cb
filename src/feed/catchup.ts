import type { Batch, FeedEvent, Filter, Position } from '../interfaces.js';
import { namedQuery } from '../db/query-errors.js';
import { readBatch, BATCH_SIZE } from '../db/read-batch.js';
import type { ReadScope } from '../db/row-security.js';
import { formatPosition } from '../position.js';
import { encodeEvent } from './frame.js';
import type { Metrics } from '../metrics.js';
import { rowSlabs, type Slab } from './slabs.js';

export interface CatchupBatch extends Omit<Batch, 'rows'> {
  readonly events: readonly FeedEvent[];
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
}

/**
 * Catch-up reads from Postgres for subscribers behind the ring.
 * - single-flight: subscribers at the same position with the same filter
 *   share one query (a reconnect storm resumes from few distinct cursors);
 * - capped: at most `concurrency` queries run; the rest wait their turn.
 */
export class Catchup {
  private readonly inflight = new Map<string, Promise<unknown>>();
  private running = 0;
  private readonly queue: (() => void)[] = [];

  constructor(
    private readonly reads: ReadScope,
    private readonly concurrency: number,
    private readonly metrics: Metrics,
  ) {}

  /** Catch-up queries running, and waiting for a slot. */
  get load(): { readonly running: number; readonly waiting: number } {
    return { running: this.running, waiting: this.queue.length };
  }

  /** Up to `limit` events after `pos`, each encoded on its own (a page of /v1/changes). */
  read(pos: Position, filter: Filter, limit = BATCH_SIZE): Promise<CatchupBatch> {
    return this.shared(`page\0${limit}`, pos, filter, limit, ({ rows, ...rest }) => ({ ...rest, events: rows.map(encodeEvent) }));
  }

  /**
   * The next batch of a stream after `pos`, as slabs of at most `maxBytes` in
   * all (at least one event). `named: false` leaves out `event:` lines.
   */
  stream(pos: Position, filter: Filter, named: boolean, maxBytes: number): Promise<StreamBatch> {
    return this.shared(`stream\0${+named}\0${maxBytes}`, pos, filter, BATCH_SIZE, ({ rows, ...rest }) => {
      const { slabs, bytes, taken } = rowSlabs(rows, named, maxBytes);
      if (taken === rows.length) return { ...rest, slabs, bytes };
      // Cut by bytes: more follows, from the last slab's last event.
      return { ...rest, slabs, bytes, full: true, covered: slabs[slabs.length - 1].last };
    });
  }

  /** One query for every caller asking the same (`shape`, position, filter) while it runs. */
  private shared<T>(shape: string, pos: Position, filter: Filter, limit: number, encode: (batch: Batch) => T): Promise<T> {
    const key = `${shape}\0${filter.project}\0${filter.types.join(',')}\0${formatPosition(pos)}`;
    const shared = this.inflight.get(key) as Promise<T> | undefined;
    if (shared) {
      this.metrics.catchupShared.inc();
      return shared;
    }
    const p = this.slot(async () => {
      this.metrics.queries.inc({ kind: 'catchup' });
      return encode(await namedQuery(this.metrics, 'catchup', this.reads.project(filter.project, (db) => readBatch(db, pos, filter, limit))));
    }).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
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
