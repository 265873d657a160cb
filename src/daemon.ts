import pg from 'pg';
import type { Config } from './config.js';
import { withDeadline } from './deadline.js';
import { Listener } from './db/listener.js';
import { notifyQueueReader } from './db/notify-queue.js';
import { checkSettings } from './db/settings.js';
import { Catchup } from './feed/catchup.js';
import { Hub } from './feed/hub.js';
import { Feed } from './feed/feed.js';
import { Tail } from './feed/tail.js';
import type { Readiness } from './http/context.js';
import { createApp, listenWithRetry, type HttpServer } from './http/server.js';
import { KeyedLimit, KeyedRate } from './http/limits.js';
import { Streams } from './http/streams.js';
import type { Logger } from './log.js';
import { createMetrics } from './metrics.js';
import { formatPosition } from './position.js';

/**
 * One pgfeed daemon: the listener, the shared tail, the hub and the HTTP
 * server, wired along the data path. `close()` releases every one of them.
 */
export class Daemon {
  readonly metrics = createMetrics();
  readonly pool: pg.Pool;
  readonly hub = new Hub();
  readonly tail: Tail;
  readonly listener: Listener;
  private server?: HttpServer;
  private streams?: Streams;
  private closing = false;

  constructor(
    private readonly config: Config,
    url: string,
    private readonly log: Logger,
  ) {
    this.pool = new pg.Pool({ connectionString: url, max: config.poolSize, application_name: 'pgfeed:query' });
    // An idle connection killed by the server (restart, pg_terminate_backend) is just replaced.
    this.pool.on('error', (err) => log.warn({ err: err.message }, 'query connection lost'));
    this.tail = new Tail(this.pool, this.hub, this.metrics, log, config);
    this.listener = new Listener(url, config.channel, () => this.tail.wake(), log, this.metrics);
    this.metrics.readNotifyQueueWith(notifyQueueReader(this.pool, this.metrics));
  }

  get port(): number {
    return this.server?.port ?? 0;
  }

  async start(): Promise<void> {
    await checkSettings(this.pool, { channel: this.config.channel, notify: this.config.notify });
    await this.tail.start();
    await this.listener.start();
    this.streams = new Streams(this.config.maxStreams, this.config.heartbeatMs);
    const feed = new Feed(
      {
        tail: this.tail,
        hub: this.hub,
        catchup: new Catchup(this.pool, this.config.catchupConcurrency, this.metrics),
        pool: this.pool,
        metrics: this.metrics,
        log: this.log,
      },
      { slowClientTimeoutMs: this.config.slowClientTimeoutMs },
    );
    const app = createApp({
      feed,
      streams: this.streams,
      metrics: this.metrics,
      log: this.log,
      retryMs: this.config.retryMs,
      corsOrigins: new Set(this.config.corsOrigins),
      trustedProxyHeader: this.config.trustedProxyHeader,
      perClient: { streams: new KeyedLimit(this.config.maxStreamsPerIp), rate: new KeyedRate(this.config.requestsPerSecondPerIp) },
      closing: () => this.closing,
      readiness: () => this.readiness(),
    });
    let warned = false;
    this.server = await listenWithRetry(app, this.config.host, this.config.port, 60_000, (err) => {
      if (!warned) this.log.warn({ err: err.message }, 'port busy, probably closing connections of a previous process; retrying for up to 60 s');
      warned = true;
    });
  }

  async readiness(): Promise<Readiness> {
    let database: { ok: boolean; error?: string };
    try {
      this.metrics.queries.inc({ kind: 'ready' });
      await withDeadline(this.pool.query('SELECT 1'), 2_000, 'SELECT 1');
      database = { ok: true };
    } catch (err) {
      database = { ok: false, error: (err as Error).message };
    }
    const heldMs = this.tail.heldSince === null ? 0 : Date.now() - this.tail.heldSince;
    const stalled = heldMs >= this.config.horizonStallMs;
    const listen = { connected: this.listener.connected, channel: this.config.channel };
    return {
      ready: database.ok && listen.connected && !stalled && !this.closing,
      closing: this.closing,
      database,
      listen,
      horizon: { held: this.tail.heldSince !== null, held_ms: heldMs, stalled, blocker: this.tail.blocker },
      tail: { head: formatPosition(this.tail.head), ring_events: this.tail.ring.size, error: this.tail.lastError?.message ?? null },
      streams: this.streams?.sse.size ?? 0,
      long_polls: this.streams?.polls.size ?? 0,
    };
  }

  /** Stops accepting, ends streams cleanly (clients resume elsewhere), then releases the database. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.server?.stopListening();
    // Streams carry Connection: close, so clients open new connections to
    // reconnect. Waiting for them to close these first was measured to buy
    // nothing: a restart on the same port binds at once either way.
    this.streams?.endAll();
    await this.tail.close();
    await this.listener.close();
    await this.pool.end().catch(() => {});
  }
}
