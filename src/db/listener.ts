import pgListen, { type Subscriber } from 'pg-listen';
import { backoffDelay, type Backoff } from '../backoff.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';

/** Up to 500 ms, 1 s, 2 s, 4 s, 8 s, then 10 s (see backoff.ts). */
const LISTEN_RETRY: Backoff = { baseMs: 500, capMs: 10_000 };

/** Stops a subscriber for good. An 'error' listener stays: an emitter without one throws. */
async function detach(sub: Subscriber): Promise<void> {
  for (const e of ['notification', 'connected', 'reconnect', 'error'] as const) sub.events.removeAllListeners(e);
  sub.events.on('error', () => {});
  await sub.close().catch(() => {});
}

/**
 * The dedicated LISTEN connection. A notification is only a doorbell: it
 * wakes the tail, which reads the table. Notifications sent while the
 * connection is down are lost, so every (re)connect also wakes the tail.
 * pg-listen is unmaintained: it is configured here never to give up.
 */
/** Another channel on the LISTEN connection. */
export interface ChannelHandler {
  notified(payload: string): void;
  /** After every (re)connect: what was sent while the connection was down is lost, so read the table. */
  connected(): void;
}

export class Listener {
  connected = false;
  private sub?: Subscriber;
  private closed = false;
  private retryTimer?: NodeJS.Timeout;
  private readonly channels = new Map<string, ChannelHandler>();

  constructor(
    private readonly url: string,
    private readonly channel: string,
    private readonly wake: () => void,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {}

  /**
   * Listens on `channel` too, on the same connection, so that one
   * connection's health (readiness, the listening metric) covers both.
   * Call before start().
   */
  addChannel(channel: string, handler: ChannelHandler): void {
    this.channels.set(channel, handler);
  }

  /** Resolves once listening; retries the first connection for as long as it takes. */
  async start(attempt = 0): Promise<void> {
    while (!this.closed) {
      // pg-listen is CommonJS with an ES-style default export.
      const sub = pgListen.default(
        { connectionString: this.url, application_name: 'pgfeed:listen' },
        {
          // The payload is a seq we never need: keep it a string, never JSON.parse it.
          parse: (s: string) => s,
          // pg-listen counts its reconnect attempts from 1.
          retryInterval: (attempt: number) => backoffDelay(LISTEN_RETRY, attempt - 1),
          retryLimit: Infinity,
          retryTimeout: Number.MAX_SAFE_INTEGER,
          paranoidChecking: 10_000,
        },
      );
      sub.events.on('notification', (n) => {
        const other = this.channels.get(n.channel);
        if (other) return other.notified(String(n.payload ?? ''));
        this.metrics.wakeups.inc();
        this.wake();
      });
      sub.events.on('connected', () => this.setConnected(true));
      sub.events.on('reconnect', (n: number) => {
        this.setConnected(false);
        if (n === 1) this.log.warn('LISTEN connection lost; reconnecting');
      });
      sub.events.on('error', (err: Error) => this.log.error({ err: err.message }, 'LISTEN connection error'));
      try {
        await sub.connect();
        await sub.listenTo(this.channel);
        for (const channel of this.channels.keys()) await sub.listenTo(channel);
        this.sub = sub;
        this.setConnected(true);
        return;
      } catch (err) {
        await detach(sub);
        const delay = backoffDelay(LISTEN_RETRY, attempt++);
        this.log.warn({ err: (err as Error).message, retryInMs: Math.round(delay) }, 'cannot LISTEN yet; retrying');
        await new Promise<void>((r) => (this.retryTimer = setTimeout(r, delay)));
      }
    }
  }

  private setConnected(up: boolean): void {
    if (up === this.connected) return;
    this.connected = up;
    this.metrics.listening.set(up ? 1 : 0);
    if (up) {
      this.log.info({ channel: this.channel }, 'listening for notifications');
      // Anything committed while we were away sent its NOTIFY into the void.
      this.wake();
      for (const handler of this.channels.values()) handler.connected();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    const sub = this.sub;
    this.sub = undefined;
    if (sub) await detach(sub);
    this.connected = false;
  }
}
