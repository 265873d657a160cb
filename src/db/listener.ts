import pgListen, { type Subscriber } from 'pg-listen';
import { backoffDelay, type Backoff } from '../backoff.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { watchedSocket } from './watched-socket.js';
import { wallClockMs } from '../wall-clock.js';

/** Up to 500 ms, 1 s, 2 s, 4 s, 8 s, then 10 s (see backoff.ts). */
const LISTEN_RETRY: Backoff = { baseMs: 500, capMs: 10_000 };

/** Stops a subscriber for good. An 'error' listener stays: an emitter without one throws. */
async function detach(sub: Subscriber): Promise<void> {
  for (const e of ['notification', 'connected', 'reconnect', 'error'] as const) sub.events.removeAllListeners(e);
  sub.events.on('error', () => {});
  await sub.close().catch(() => {});
}

export interface ListenSettings {
  readonly channel: string;
  /** Interval of the heartbeat query on the connection. */
  readonly heartbeatMs: number;
  /** A connection on which nothing moved for this long is destroyed and replaced; more than heartbeatMs. */
  readonly timeoutMs: number;
}

/** What the listener tells the daemon. */
export interface ListenHooks {
  /**
   * Read the table: a notification came (`bell`: when, wallClockMs), or the
   * connection is back after notifications may have been lost (no bell).
   */
  wake(bell?: number): void;
  /** The connection went up or down (`connected`, `downSince`). */
  changed(): void;
}

/**
 * The dedicated LISTEN connection. A notification is only a doorbell: it
 * wakes the tail, which reads the table. Notifications sent while the
 * connection is down are lost, so every (re)connect also wakes the tail.
 * pg-listen is unmaintained: it is configured here never to give up, and
 * its heartbeat gets the deadline it lacks (watchedSocket).
 */
/** Another channel on the LISTEN connection. */
export interface ChannelHandler {
  notified(payload: string): void;
  /** After every (re)connect: what was sent while the connection was down is lost, so read the table. */
  connected(): void;
}

export class Listener {
  connected = false;
  /** Since when the connection has been down, once it was up (null while up, and before the first connect). */
  downSince: number | null = null;
  private sub?: Subscriber;
  private closed = false;
  private retryTimer?: NodeJS.Timeout;
  private readonly channels = new Map<string, ChannelHandler>();

  constructor(
    private readonly url: string,
    private readonly settings: ListenSettings,
    private readonly hooks: ListenHooks,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {}

  private get channel(): string {
    return this.settings.channel;
  }

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
        {
          connectionString: this.url,
          application_name: 'pgfeed:listen',
          stream: watchedSocket(this.settings.timeoutMs, 'LISTEN connection', 'PGFEED_LISTEN_TIMEOUT_MS', this.log),
          // pg-listen turns keepAlive on, for the kernel to notice a dead peer too;
          // without a delay its default (2 h) would apply.
          keepAliveInitialDelayMillis: this.settings.heartbeatMs,
        },
        {
          // The payload is a seq we never need: keep it a string, never JSON.parse it.
          parse: (s: string) => s,
          // pg-listen counts its reconnect attempts from 1.
          retryInterval: (attempt: number) => backoffDelay(LISTEN_RETRY, attempt - 1),
          retryLimit: Infinity,
          retryTimeout: Number.MAX_SAFE_INTEGER,
          // Its heartbeat: a SELECT on the LISTEN connection at this interval.
          paranoidChecking: this.settings.heartbeatMs,
        },
      );
      sub.events.on('notification', (n) => {
        const other = this.channels.get(n.channel);
        if (other) return other.notified(String(n.payload ?? ''));
        this.metrics.wakeups.inc();
        this.hooks.wake(wallClockMs());
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
    this.downSince = up ? null : Date.now();
    this.metrics.listening.set(up ? 1 : 0);
    if (up) {
      this.log.info({ channel: this.channel }, 'listening for notifications');
      // Anything committed while we were away sent its NOTIFY into the void.
      this.hooks.wake();
      for (const handler of this.channels.values()) handler.connected();
    }
    this.hooks.changed();
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
