import type { Batch, FeedEvent, Filter, Position } from '../interfaces.js';
import { namedQuery } from '../db/query-errors.js';
import { readBatch, BATCH_SIZE } from '../db/read-batch.js';
import type { ReadScope } from '../db/row-security.js';
import { formatPosition } from '../position.js';
import { encodeEvent } from './frame.js';
import type { Metrics } from '../metrics.js';

export interface CatchupBatch extends Omit<Batch, 'rows'> {
  readonly events: readonly FeedEvent[];
}

/**
 * Catch-up reads from Postgres for subscribers behind the ring.
 * - single-flight: subscribers at the same position with the same filter
 *   share one query (a reconnect storm resumes from few distinct cursors);
 * - capped: at most `concurrency` queries run; the rest wait their turn.
 */
export class Catchup {
  private readonly inflight = new Map<string, Promise<CatchupBatch>>();
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

  read(pos: Position, filter: Filter, limit = BATCH_SIZE): Promise<CatchupBatch> {
    const key = `${filter.project}\0${filter.types.join(',')}\0${formatPosition(pos)}\0${limit}`;
    const shared = this.inflight.get(key);
    if (shared) {
      this.metrics.catchupShared.inc();
      return shared;
    }
    const p = this.slot(async () => {
      this.metrics.queries.inc({ kind: 'catchup' });
      const batch = await namedQuery(this.metrics, 'catchup', this.reads.project(filter.project, (db) => readBatch(db, pos, filter, limit)));
      const { rows, ...rest } = batch;
      return { ...rest, events: rows.map(encodeEvent) };
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
