import type pg from 'pg';
import { isUnreachable, queryFailure } from './db/query-errors.js';
import { pruneStep, readRetention, writeRetention, type RetentionRules } from './db/retention.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';

/** The pause after a step, in multiples of the step's duration. */
const PAUSE_PER_STEP = 3;

export interface PrunerOptions {
  /** Seconds; 0 clears the rule; null leaves the database's rule. */
  readonly retention: number | null;
  readonly retentionRows: number | null;
  readonly pruneIntervalMs: number;
  readonly pruneStepRows: number;
}

/**
 * Retention in a daemon configured with it: it writes its rules to
 * pgfeed.retention (where `SELECT pgfeed.prune()` by hand reads them too),
 * then runs a pass every interval. A pass is steps of at most
 * `pruneStepRows` rows, each its own short transaction, with a pause of
 * PAUSE_PER_STEP times as long as the step took between them, so pruning
 * takes about a quarter of one connection's time (on a 2-core server, half
 * of it cost the writers a quarter of their throughput: bench/README.md) and
 * never holds the horizon back for more than a step.
 * Replicas take turns through the advisory lock pgfeed.prune() takes.
 */
export class Pruner {
  private timer?: NodeJS.Timeout;
  private pass: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly opts: PrunerOptions,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /** Whether this daemon prunes at all: only when configured with a rule (or with off). */
  get enabled(): boolean {
    return this.opts.retention !== null || this.opts.retentionRows !== null;
  }

  async start(): Promise<void> {
    if (!this.enabled || this.timer) return;
    const had = await readRetention(this.pool);
    const want: { maxAgeS?: number | null; maxRows?: number | null } = {};
    if (this.opts.retention !== null) want.maxAgeS = this.opts.retention || null;
    if (this.opts.retentionRows !== null) want.maxRows = this.opts.retentionRows || null;
    await writeRetention(this.pool, want);
    const now: RetentionRules = { ...had, ...want };
    if (now.maxAgeS !== had.maxAgeS || now.maxRows !== had.maxRows) this.log.info({ before: had, now }, 'retention rules written to pgfeed.retention');
    this.timer = setInterval(() => this.run(), this.opts.pruneIntervalMs);
    this.timer.unref();
    this.run();
  }

  private run(): void {
    this.pass = this.pass.then(() => this.prunePass());
  }

  private async prunePass(): Promise<void> {
    let total = 0;
    try {
      while (!this.closed) {
        const started = performance.now();
        this.metrics.queries.inc({ kind: 'prune' });
        const n = await pruneStep(this.pool, this.opts.pruneStepRows);
        const took = performance.now() - started;
        this.metrics.pruneSeconds.observe(took / 1000);
        if (!n) break; // done, or another replica prunes
        total += n;
        this.metrics.prunedRows.inc(n);
        await new Promise((r) => setTimeout(r, took * PAUSE_PER_STEP));
      }
      if (total) this.log.info({ rows: total }, 'pruned');
    } catch (err) {
      if (this.closed) return;
      const failure = queryFailure(err);
      if (isUnreachable(err)) this.log.warn(failure, 'pruning step failed; retrying at the next interval');
      else this.log.error(failure, 'pruning step failed for a reason other than the connection; retrying at the next interval');
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.pass;
  }
}
