/**
 * One stream for every tab of an origin (`shareAcrossTabs`). The tabs whose
 * feeds follow the same stream (url, project, types) elect a leader with the
 * Web Locks API: the tab holding the lock runs the ordinary connection and
 * posts each event, with the cursor it followed, on a BroadcastChannel.
 * The others deliver from the channel, each from its own position:
 *
 * - an event at or before a tab's position (by (xid, seq)) is dropped;
 * - an event whose predecessor is the tab's own cursor is delivered;
 * - otherwise the tab has a gap (it joined late, or a new leader started
 *   from elsewhere): it reads /v1/changes from its own cursor until it has
 *   caught up, then takes the channel again.
 *
 * When the leader tab closes, the browser releases its lock, the next tab
 * waiting for it becomes the leader and connects from its own position.
 */
import type { ChangeEvent } from '../protocol.js';
import type { SignalName } from './signals.js';

/** What the leader posts. */
export type TabMessage =
  | { readonly kind: 'event'; readonly ev: ChangeEvent; readonly prev: string | null }
  | { readonly kind: 'signal'; readonly name: SignalName; readonly value: unknown };

interface Channel {
  postMessage(m: unknown): void;
  onmessage: ((m: { data: unknown }) => void) | null;
  close(): void;
}

interface Locks {
  request(name: string, options: { signal: AbortSignal }, fn: () => Promise<void>): Promise<unknown>;
}

interface TabGlobals {
  readonly navigator?: { readonly locks?: Locks };
  readonly BroadcastChannel?: new (name: string) => Channel;
}

/** Whether this runtime can share: Web Locks and BroadcastChannel (every current browser; not Node). */
export function canShareTabs(): boolean {
  const g = globalThis as TabGlobals;
  return typeof g.navigator?.locks?.request === 'function' && typeof g.BroadcastChannel === 'function';
}

export class TabShare {
  private readonly channel: Channel;
  private readonly lockAbort = new AbortController();
  leading = false;

  /** `lead` runs the ordinary connection while this tab holds the lock, and returns when the feed ends. */
  constructor(name: string, onMessage: (m: TabMessage) => void, lead: () => Promise<void>) {
    const g = globalThis as Required<TabGlobals>;
    this.channel = new g.BroadcastChannel(`pgfeed:${name}`);
    this.channel.onmessage = (m) => {
      if (!this.leading) onMessage(m.data as TabMessage);
    };
    g.navigator.locks!.request(`pgfeed:${name}`, { signal: this.lockAbort.signal }, async () => {
      this.leading = true;
      await lead();
    }).catch(() => undefined); // aborted: the feed closed before it led
  }

  post(m: TabMessage): void {
    if (this.leading) this.channel.postMessage(m);
  }

  close(): void {
    this.lockAbort.abort();
    this.channel.close();
  }
}
