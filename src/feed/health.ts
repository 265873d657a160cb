import type { Blocker } from '../db/horizon.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { DegradedDetail } from '../protocol.js';

export type DegradedReason = DegradedDetail['reason'];

/** What health is read from: the LISTEN connection's state and the tail's view of the horizon. */
export interface HealthSources {
  readonly listener: { readonly downSince: number | null };
  readonly tail: { readonly heldSince: number | null; readonly blocker: Blocker | null };
}

/**
 * Whether delivery is delayed, and why: the LISTEN connection is down (events
 * still come, through the safety poll, but late), or committed rows have
 * waited behind the xmin horizon for the stall threshold. It owns the
 * transitions: each condition is announced once when it begins, and
 * `recovered` once none holds any more, never once per event or per read.
 * Readiness, the metrics, the streams and the poll route all read it here.
 */
export class Health {
  /** The conditions that hold, in the order they began: the last is the newest. */
  private active: DegradedReason[] = [];
  private stallTimer?: NodeJS.Timeout;
  private listeners: ((state: DegradedDetail | null) => void)[] = [];
  private closed = false;

  constructor(
    private readonly sources: HealthSources,
    private readonly stallMs: number,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    for (const reason of ['listen_down', 'horizon_stalled'] as const) metrics.degraded.set({ reason }, 0);
  }

  /**
   * Called with the newest condition whenever it changes (a condition began,
   * or the newest one ended while an older one holds), and with null when
   * every condition has ended. So the last call always describes the present.
   */
  onChange(fn: (state: DegradedDetail | null) => void): void {
    this.listeners.push(fn);
  }

  /** Every condition that holds now, oldest first. */
  conditions(now = Date.now()): DegradedDetail[] {
    return this.active.map((r) => this.detail(r, now));
  }

  /** The newest condition, as `pgfeed.degraded` reports it; null when delivery is normal. */
  current(now = Date.now()): DegradedDetail | null {
    const newest = this.active[this.active.length - 1];
    return newest === undefined ? null : this.detail(newest, now);
  }

  /** Re-reads the sources; call whenever one may have changed. Cheap when nothing did. */
  update(now = Date.now()): void {
    if (this.closed) return;
    const holds = this.holding(now);
    const before = this.active[this.active.length - 1];
    this.active = this.active.filter((r) => holds.has(r));
    for (const r of holds) if (!this.active.includes(r)) this.active.push(r);
    this.armStallTimer(now);
    const after = this.active[this.active.length - 1];
    for (const r of ['listen_down', 'horizon_stalled'] as const) this.metrics.degraded.set({ reason: r }, holds.has(r) ? 1 : 0);
    if (after === before) return;
    const state = this.current(now);
    if (state) this.log.warn({ degraded: state }, `delivery degraded: ${state.reason}`);
    else this.log.info('delivery back to normal');
    for (const fn of this.listeners) fn(state);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.stallTimer);
  }

  private holding(now: number): Set<DegradedReason> {
    const { listener, tail } = this.sources;
    const holds = new Set<DegradedReason>();
    if (listener.downSince !== null) holds.add('listen_down');
    if (tail.heldSince !== null && now - tail.heldSince >= this.stallMs) holds.add('horizon_stalled');
    return holds;
  }

  /** The tail re-reads often while rows are held, but not while its reads fail: the stall must begin on time regardless. */
  private armStallTimer(now: number): void {
    clearTimeout(this.stallTimer);
    const held = this.sources.tail.heldSince;
    if (held === null || this.active.includes('horizon_stalled')) return;
    this.stallTimer = setTimeout(() => this.update(), Math.max(0, held + this.stallMs - now));
    this.stallTimer.unref();
  }

  private detail(reason: DegradedReason, now: number): DegradedDetail {
    const { listener, tail } = this.sources;
    if (reason === 'listen_down') return { reason, since: new Date(listener.downSince ?? now).toISOString() };
    const b = tail.blocker;
    return {
      reason,
      since: new Date(tail.heldSince ?? now).toISOString(),
      blocker: b && { pid: b.pid, application_name: b.application, xact_age_ms: b.age_ms },
    };
  }
}
