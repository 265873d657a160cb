import type { Metrics } from '../metrics.js';

/**
 * One tail read's way from the writer to the sockets, as wall-clock
 * milliseconds. Taken once per read, never per event or per subscriber.
 */
export interface ReadTimes {
  /** created_at of the read's oldest and newest rows: their transactions' start. */
  readonly written: { readonly oldest: number; readonly newest: number } | null;
  /** When the doorbell this read answers rang (null: a poll or a repeat read). */
  readonly bell: number | null;
  readonly sent: number;
  readonly received: number;
  readonly encoded: number;
  /** The hub has grouped the events by project: the writes begin. */
  readonly routed: number;
  /** Every live stream's write of the batch has returned. */
  readonly done: number;
}

/** Records a read that delivered rows into pgfeed_delivery_step_seconds (docs/http.md says what each step covers). */
export function observeRead(metrics: Metrics, t: ReadTimes): void {
  const step = metrics.deliverySteps;
  const s = (from: number, to: number) => Math.max(0, to - from) / 1000;
  if (t.bell !== null) {
    // A row written after the bell rang belongs to a later doorbell: only an older one measures this one.
    if (t.written !== null && t.written.newest <= t.bell) step.observe({ step: 'notify' }, s(t.written.newest, t.bell));
    step.observe({ step: 'wait' }, s(t.bell, t.sent));
  }
  step.observe({ step: 'read' }, s(t.sent, t.received));
  step.observe({ step: 'encode' }, s(t.received, t.encoded));
  step.observe({ step: 'hub' }, s(t.encoded, t.routed));
  step.observe({ step: 'write' }, s(t.routed, t.done));
  if (t.written === null) return;
  step.observe({ step: 'total' }, s(t.written.newest, t.done));
  // The read's oldest row: it waited for an older transaction to commit (the horizon), or for the read before.
  step.observe({ step: 'oldest' }, s(t.written.oldest, t.done));
}
