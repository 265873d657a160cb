import pg from 'pg';
import { backoffDelay, type Backoff } from '../backoff.js';
import type { Position } from '../interfaces.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { comparePositions } from '../position.js';
import { watchedSocket } from './watched-socket.js';

/** Up to 100 ms, 200 ms, 400 ms … then 5 s between reconnects (see backoff.ts). */
const RECONNECT: Backoff = { baseMs: 100, capMs: 5_000 };

/**
 * Where the server's next WAL record will go. A transaction that commits
 * (or aborts) writes a record, so every moment at which a row can become
 * deliverable (its transaction, and every older one, has ended) moves it.
 * It reads no table and takes no lock, and any role may call it.
 *
 * Chosen over the change_log seq's last_value, which costs the same per
 * query (bench/README.md, "Doorbell"): a seq moves when a row is inserted,
 * not when it commits, so it would need the horizon beside it and a record
 * of which draws are still open; and a role that only reads the log may not
 * read the sequence. The price: writes to other tables and databases of the
 * cluster move it too, and each move costs one tail read that finds nothing.
 */
const PROBE: pg.QueryConfig = { name: 'pgfeed_wake_poll', text: 'SELECT pg_current_wal_insert_lsn()::text AS lsn' };

/**
 * While the tail keeps finding rows, a probe is still sent this often: it
 * proves the connection alive within the socket's deadline (watched-socket.ts),
 * and costs one query a second under load instead of 1,000 / intervalMs.
 */
const BUSY_PROBE_MS = 1_000;

export interface WakePollSettings {
  readonly intervalMs: number;
  /** A connection on which a probe goes unanswered for this long is replaced. */
  readonly timeoutMs: number;
}

/**
 * The doorbell of PGFEED_WAKE=poll, where writers never NOTIFY (and never
 * queue behind NOTIFY's commit lock): one connection of its own asks, every
 * `intervalMs`, where the WAL insert position is, and wakes the tail when it
 * moved. A move with nothing committed yet (a transaction still writing) is
 * followed by another one at its commit. After every (re)connect the first
 * answer wakes the tail, since moves during the outage were not seen.
 *
 * While the tail's last row keeps moving (its reads keep finding rows), it is
 * woken every interval without asking first: under a steady write load the WAL moves at every
 * probe, so the probe would only double the queries (and their round trips,
 * which cost the daemon and Postgres CPU the writers need: bench/README.md,
 * "Doorbell"). The first read that finds nothing brings the probe back. The
 * bound on latency is the same: one interval after a read, another one.
 */
export class WakePoll {
  connected = false;
  private closed = false;
  private started = false;
  private client?: pg.Client;
  private timer?: NodeJS.Timeout;
  private stopSleeping?: () => void;
  private done: Promise<void> = Promise.resolve();

  constructor(
    private readonly url: string,
    private readonly settings: WakePollSettings,
    private readonly wake: () => void,
    /** The tail's last row: it moves only when a read finds rows. */
    private readonly lastRow: () => Position,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {}

  /** Starts polling in the background; again (a repeated Daemon.start()) does nothing. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.done = this.run();
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.closed) {
      const client = new pg.Client({
        connectionString: this.url,
        application_name: 'pgfeed:wake',
        stream: watchedSocket(this.settings.timeoutMs, 'wake poll connection', 'PGFEED_LISTEN_TIMEOUT_MS', this.log),
      });
      // A lost connection also fails the probe in flight, which reports it.
      client.on('error', () => {});
      this.client = client;
      try {
        await client.connect();
        let last: string | null = null;
        let probedAt = 0;
        let seenRow = this.lastRow();
        while (!this.closed) {
          const row = this.lastRow();
          const busy = comparePositions(row, seenRow) !== 0;
          seenRow = row;
          if (busy && performance.now() - probedAt < BUSY_PROBE_MS) {
            this.metrics.wakePollSkipped.inc();
            this.wake();
            await this.sleep(this.settings.intervalMs);
            continue;
          }
          probedAt = performance.now();
          this.metrics.queries.inc({ kind: 'wake' });
          const { rows } = await client.query<{ lsn: string }>(PROBE);
          if (!this.connected) this.setConnected(true);
          attempt = 0;
          if (rows[0].lsn !== last) {
            last = rows[0].lsn;
            this.metrics.wakePollChanges.inc();
            this.wake();
          }
          await this.sleep(this.settings.intervalMs);
        }
      } catch (err) {
        if (this.closed) break;
        const delay = backoffDelay(RECONNECT, attempt++);
        this.log.warn({ err: (err as Error).message, retryInMs: Math.round(delay) }, 'wake poll failed; reconnecting');
        this.setConnected(false);
        await this.sleep(delay);
      } finally {
        await client.end().catch(() => {});
      }
    }
  }

  private setConnected(up: boolean): void {
    if (up === this.connected) return;
    this.connected = up;
    this.metrics.wakePollConnected.set(up ? 1 : 0);
    if (up) this.log.info({ intervalMs: this.settings.intervalMs }, 'polling for commits');
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.stopSleeping = resolve;
      this.timer = setTimeout(resolve, ms);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.stopSleeping?.();
    await this.client?.end().catch(() => {});
    await this.done;
    this.connected = false;
  }
}
