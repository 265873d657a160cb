// Leak checks for the tests that run the feed in-process (Tail, Hub,
// Subscriber): once a test has closed its components, no subscriber is left
// in the hub and none of the timers they set is still pending.
//
// Timers are counted by wrapping the global timer functions for the test,
// rather than by process.getActiveResourcesInfo(), which leaves out unref'd
// timers such as the subscriber's slow-client timer.
import type { Test as TapTest } from 'tap';
import type { Hub } from '../../src/feed/hub.js';

type Test = TapTest;

export interface TimerLedger {
  /** Where each timer still pending was set (the first stack frames outside this file). */
  pending(): string[];
}

/** Counts the timers set from now until the test ends. */
export function trackTimers(t: Test): TimerLedger {
  const live = new Map<unknown, string>();
  const g = globalThis as any;
  const orig = { setTimeout: g.setTimeout, setInterval: g.setInterval, clearTimeout: g.clearTimeout, clearInterval: g.clearInterval };
  const where = () => (new Error().stack ?? '').split('\n').slice(3, 5).map((l) => l.trim()).join(' < ');
  g.setTimeout = (fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const h = orig.setTimeout((...a: unknown[]) => {
      live.delete(h);
      fn(...a);
    }, ms, ...args);
    live.set(h, where());
    return h;
  };
  g.setInterval = (fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const h = orig.setInterval(fn, ms, ...args);
    live.set(h, where());
    return h;
  };
  g.clearTimeout = (h: unknown) => {
    live.delete(h);
    orig.clearTimeout(h);
  };
  g.clearInterval = (h: unknown) => {
    live.delete(h);
    orig.clearInterval(h);
  };
  t.teardown(() => Object.assign(g, orig));
  return { pending: () => [...live.values()] };
}

/** Call after closing the components: the hub is empty and no timer they set is pending. */
export async function assertReleased(t: Test, hub: Hub, timers: TimerLedger): Promise<void> {
  t.equal(hub.size, 0, 'no subscriber is left in the hub');
  // Closes that finish on a later turn (a pending query's callback) get one.
  await new Promise((r) => setImmediate(r));
  t.same(timers.pending(), [], 'no timer is left pending');
}
