import pg from 'pg';
import { Auth, authEnabled } from './auth/auth.js';
import { REVOKE_CHANNEL } from './auth/revocations.js';
import type { Config } from './config.js';
import { withDeadline } from './deadline.js';
import { Listener } from './db/listener.js';
import { notifyQueueReader, queueCrossings } from './db/notify-queue.js';
import { checkRowSecurity, ReadScope } from './db/row-security.js';
import { checkSettings } from './db/settings.js';
import { Standbys } from './db/standbys.js';
import { WakePoll } from './db/wake-poll.js';
import { Catchup } from './feed/catchup.js';
import { Hub } from './feed/hub.js';
import { Feed } from './feed/feed.js';
import { controlFrame } from './feed/frame.js';
import { Health } from './feed/health.js';
import { Tail } from './feed/tail.js';
import type { Readiness } from './http/context.js';
import { createApp, listenWithRetry, type HttpServer } from './http/server.js';
import { KeyedLimit, KeyedRate } from './http/limits.js';
import { Streams } from './http/streams.js';
import { uiEnabled } from './http/ui-route.js';
import type { Logger } from './log.js';
import { createMetrics } from './metrics.js';
import { formatPosition } from './position.js';
import { Pruner } from './pruner.js';

/** How often the NOTIFY queue is read for the log warning, besides each scrape: the warning must not depend on a scraper. */
const NOTIFY_QUEUE_CHECK_MS = 10_000;

/**
 * One pgfeed daemon: the listener, the shared tail, the hub and the HTTP
 * server, wired along the data path. `close()` releases every one of them.
 */
export class Daemon {
  readonly metrics = createMetrics();
  readonly pool: pg.Pool;
  /** The pool, for reads of change_log: with row security, each in a transaction naming what it may see. */
  readonly reads: ReadScope;
  readonly hub = new Hub();
  readonly tail: Tail;
  readonly listener: Listener;
  /** With PGFEED_WAKE=poll, the doorbell; the listener then carries revocations (and any NOTIFY still sent). */
  readonly wakePoll: WakePoll | null;
  readonly health: Health;
  readonly pruner: Pruner;
  /** The hot standbys of PGFEED_READ_URL that catch-up reads may run on; absent without any. */
  readonly standbys?: Standbys;
  private server?: HttpServer;
  private queueTimer?: NodeJS.Timeout;
  private readonly readNotifyQueue: () => Promise<number>;
  private streams?: Streams;
  /** Present when authentication is on. */
  private auth?: Auth;
  private closing = false;

  constructor(
    private readonly config: Config,
    url: string,
    private readonly log: Logger,
  ) {
    this.pool = new pg.Pool({ connectionString: url, max: config.poolSize, application_name: 'pgfeed:query' });
    // An idle connection killed by the server (restart, pg_terminate_backend) is just replaced.
    this.pool.on('error', (err) => log.warn({ err: err.message }, 'query connection lost'));
    this.reads = new ReadScope(this.pool, config.rowSecurity);
    this.tail = new Tail(this.reads, this.hub, this.metrics, log, config, () => this.health.update());
    this.listener = new Listener(
      url,
      { channel: config.channel, heartbeatMs: config.listenHeartbeatMs, timeoutMs: config.listenTimeoutMs },
      { wake: (bell) => this.tail.wake(bell), changed: () => this.health.update() },
      log,
      this.metrics,
    );
    this.wakePoll = config.wake === 'poll'
      // A probe is due every interval, and then has the LISTEN connection's deadline to be answered.
      ? new WakePoll(url, { intervalMs: config.wakePollMs, timeoutMs: config.wakePollMs + config.listenTimeoutMs }, () => this.tail.wake(), () => this.tail.lastRow, log, this.metrics)
      : null;
    this.health = new Health({ listener: this.listener, tail: this.tail }, config.horizonStallMs, this.metrics, log);
    this.readNotifyQueue = notifyQueueReader(this.pool, this.metrics, queueCrossings(config.notifyQueueWarn, log));
    this.metrics.readNotifyQueueWith(this.readNotifyQueue);
    this.pruner = new Pruner(this.pool, config, this.metrics, log);
    if (config.readUrl.length) this.standbys = new Standbys(config.readUrl, config.poolSize, config.rowSecurity, () => this.tail.server, this.metrics, log);
  }

  get port(): number {
    return this.server?.port ?? 0;
  }

  async start(): Promise<void> {
    await checkSettings(this.pool, { channel: this.config.channel, notify: this.config.notify });
    await checkRowSecurity(this.pool, this.config.rowSecurity);
    // Before the listener starts: revocations arrive on its connection. Kept if a later step fails and start() runs again.
    if (authEnabled(this.config) && !this.auth) {
      this.auth = await Auth.open(this.config, this.pool, this.log, () => this.streams);
      this.listener.addChannel(REVOKE_CHANNEL, this.auth.revocations);
    }
    await this.tail.start();
    // After the tail: a standby is trusted only against the server the tail reads from.
    await this.standbys?.start();
    // Not awaited: like the safety poll, it only hastens what the tail reads.
    this.wakePoll?.start();
    await this.listener.start();
    await this.pruner.start();
    this.streams = new Streams(this.config.maxStreams, this.config.heartbeatMs);
    const streams = this.streams;
    this.metrics.readCatchupHeldWith(() => streams.catchupHeld().total);
    // Every open stream hears each transition once, in order with its data.
    this.health.onChange((state) => streams.signal(state ? controlFrame('pgfeed.degraded', state) : controlFrame('pgfeed.ok', {})));
    this.queueTimer = setInterval(() => void this.readNotifyQueue(), NOTIFY_QUEUE_CHECK_MS);
    this.queueTimer.unref();
    const feed = new Feed(
      {
        tail: this.tail,
        hub: this.hub,
        catchup: new Catchup(this.reads, this.config.catchupConcurrency, this.metrics, this.standbys && { list: this.standbys, tail: () => this.tail.server }),
        reads: this.reads,
        metrics: this.metrics,
        log: this.log,
      },
      { slowClientTimeoutMs: this.config.slowClientTimeoutMs, catchupStreamBytes: this.config.catchupStreamBytes },
    );
    const app = createApp({
      feed,
      streams: this.streams,
      metrics: this.metrics,
      log: this.log,
      retryMs: this.config.retryMs,
      ui: uiEnabled(this.config.ui, this.config.host),
      corsOrigins: new Set(this.config.corsOrigins),
      trustedProxyHeader: this.config.trustedProxyHeader,
      perClient: { streams: new KeyedLimit(this.config.maxStreamsPerIp), rate: new KeyedRate(this.config.requestsPerSecondPerIp) },
      closing: () => this.closing,
      readiness: () => this.readiness(),
      health: this.health,
      auth: this.auth,
      operatorToken: this.config.operatorToken,
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
    const now = Date.now();
    const heldMs = this.tail.heldSince === null ? 0 : now - this.tail.heldSince;
    const degraded = this.health.conditions(now);
    const stalled = degraded.some((d) => d.reason === 'horizon_stalled');
    const listen = { connected: this.listener.connected, channel: this.config.channel };
    const wake = { mode: this.config.wake, connected: this.wakePoll ? this.wakePoll.connected : this.listener.connected };
    // Ready while this replica can serve. Without LISTEN the tail still
    // polls (PGFEED_POLL_MS): events come late, not never. A stalled horizon
    // is the whole database's, the same on every replica: turning them all
    // unready would take the fleet out while none could do better. Both are
    // reported, in `degraded`, the metrics and pgfeed.degraded, not here.
    const polling = this.tail.lastError === null;
    return {
      ready: database.ok && (listen.connected || polling) && !this.closing,
      closing: this.closing,
      database,
      listen,
      horizon: { held: this.tail.heldSince !== null, held_ms: heldMs, stalled, blocker: this.tail.blocker },
      degraded,
      tail: { head: formatPosition(this.tail.head), ring_events: this.tail.ring.size, error: this.tail.lastError?.message ?? null },
      standbys: this.standbys?.detail() ?? [],
      streams: this.streams?.sse.size ?? 0,
      long_polls: this.streams?.polls.size ?? 0,
      wake,
    };
  }

  /** SIGHUP: re-reads the token keys. False when nothing was reloaded, or the new keys do not read (the old ones stay). */
  async reload(): Promise<boolean> {
    return this.auth ? this.auth.reload() : false;
  }

  get authenticating(): boolean {
    return this.auth !== undefined;
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
    clearInterval(this.queueTimer);
    this.health.close();
    await this.pruner.close();
    await this.wakePoll?.close();
    await this.tail.close();
    await this.listener.close();
    await this.standbys?.close();
    this.auth?.close();
    await this.pool.end().catch(() => {});
  }
}
