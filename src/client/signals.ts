/**
 * What a feed tells its `on()` handlers besides the events themselves. The
 * daemon's control events are `pgfeed.*` SSE events without an `id:`; each
 * known one has a signal named after it (`pgfeed.unavailable` is
 * 'unavailable'), typed by src/protocol.ts ControlEvents. An unknown
 * `pgfeed.*` event is ignored, so a newer daemon never breaks an older client.
 */
import type { ChangeEvent, ControlEvent } from '../protocol.js';
import type { FeedError } from './feed-error.js';
import type { HoldReason } from './page-lifecycle.js';

/**
 * The stream must start over: the cursor is gone. A `pgfeed.reset` event, or
 * the `410 cursor_expired` answer to a resume (then with its `code`);
 * `earliest` says where retained history now begins. A handler may call
 * feed.restart() to go on from there; otherwise the feed ends with a
 * FeedError('cursor_expired').
 */
export type ResetSignal = ControlEvent<'pgfeed.reset'> & { readonly code?: string };

export type FeedState = 'connecting' | 'open' | 'retrying' | 'paused' | 'closed';

export interface StateChange {
  readonly state: FeedState;
  /** With 'retrying': why the last connection ended or failed (absent for a clean end). */
  readonly error?: FeedError;
  /** With 'retrying': how long until the next connect. */
  readonly delayMs?: number;
  /** With 'paused': the browser is offline, or the page has been hidden (pauseWhenHidden). */
  readonly reason?: HoldReason;
}

export interface FeedSignals {
  readonly event: ChangeEvent;
  readonly reset: ResetSignal;
  readonly degraded: ControlEvent<'pgfeed.degraded'>;
  readonly ok: ControlEvent<'pgfeed.ok'>;
  readonly expiring: ControlEvent<'pgfeed.expiring'>;
  readonly expired: ControlEvent<'pgfeed.expired'>;
  readonly revoked: ControlEvent<'pgfeed.revoked'>;
  readonly unavailable: ControlEvent<'pgfeed.unavailable'>;
  readonly state: StateChange;
  /** The feed ended for good: it will not reconnect. */
  readonly error: FeedError;
}

export type SignalName = keyof FeedSignals;

/** The control signals, by the SSE event name they arrive as. */
export const CONTROL_SIGNALS: Readonly<Record<string, SignalName>> = {
  'pgfeed.reset': 'reset',
  'pgfeed.degraded': 'degraded',
  'pgfeed.ok': 'ok',
  'pgfeed.expiring': 'expiring',
  'pgfeed.expired': 'expired',
  'pgfeed.revoked': 'revoked',
  'pgfeed.unavailable': 'unavailable',
};

type Handler<K extends SignalName> = (value: FeedSignals[K]) => void;

/** on()/off() for a feed's signals. A handler that throws is reported, not allowed to break the stream. */
export class Signals {
  private readonly handlers = new Map<SignalName, Set<(value: never) => void>>();

  on<K extends SignalName>(name: K, fn: Handler<K>): void {
    let set = this.handlers.get(name);
    if (!set) this.handlers.set(name, (set = new Set()));
    set.add(fn as (value: never) => void);
  }

  off<K extends SignalName>(name: K, fn: Handler<K>): void {
    this.handlers.get(name)?.delete(fn as (value: never) => void);
  }

  has(name: SignalName): boolean {
    return (this.handlers.get(name)?.size ?? 0) > 0;
  }

  emit<K extends SignalName>(name: K, value: FeedSignals[K]): void {
    for (const fn of [...(this.handlers.get(name) ?? [])]) {
      try {
        (fn as Handler<K>)(value);
      } catch (err) {
        // As EventTarget does: report it where uncaught errors go (the console, process 'uncaughtException').
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}
