import pg from 'pg';
import { withDeadline } from '../deadline.js';
import { PgfeedError } from '../errors.js';
import type { Position, ServerIdentity } from '../interfaces.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { horizonPosition, isAfter } from '../position.js';
import { isUnreachable } from './query-errors.js';
import { checkRowSecurity, ReadScope } from './row-security.js';
import { describeServer, identityOf, IDENTITY_COLUMNS, readHolds } from './server-identity.js';

/** How often each standby's state and horizon are read, besides every catch-up read it answers. */
export const PROBE_MS = 2_000;
/** A standby that does not connect, or answer a read, within this long is passed over: the primary answers instead. */
const CONNECT_TIMEOUT_MS = 2_000;
const QUERY_TIMEOUT_MS = 10_000;

/**
 * - `starting`: not probed yet;
 * - `streaming`: in recovery, streaming the tail's server's timeline: used;
 * - `unreachable`: no connection, or it failed;
 * - `not_streaming`: in recovery but not streaming (its WAL receiver is down,
 *   or the role may not see it: grant pg_read_all_stats);
 * - `other_timeline`: streaming a timeline other than the tail's (a
 *   failover happened on one side of it);
 * - `promoted`: not in recovery any more: it is a primary of its own;
 * - `other_server`: another cluster or database than the tail's;
 * - `misconfigured`: its role's row security does not match
 *   PGFEED_ROW_SECURITY (docs/database-role.md): its reads would be wrong.
 */
export type StandbyState = 'starting' | 'streaming' | 'unreachable' | 'not_streaming' | 'other_timeline' | 'promoted' | 'other_server' | 'misconfigured';

/** Why a catch-up read went to the primary although standbys are configured. */
export type FallbackReason = 'behind' | 'unavailable' | 'failed' | 'untrusted';

/** One hot standby from PGFEED_READ_URL: its pool, and what the last read or probe said about it. */
export class Standby {
  readonly reads: ReadScope;
  state: StandbyState = 'starting';
  since = Date.now();
  error: string | null = null;
  server: ServerIdentity | null = null;
  /** The horizon of its latest read or probe: it has nothing for a stream before it. */
  horizon = 0;
  /** Catch-up reads running on it (for least-loaded routing). */
  running = 0;
  /** Seconds since the last transaction it replayed committed on the primary, at the last probe (null: unknown). */
  replayLagS: number | null = null;
  /** Its role's row security was found to match the setting (checked once, as the daemon checks the primary's). */
  rowSecurityChecked = false;

  constructor(
    /** host:port/database, for logs, /readyz and metric labels: never the password. */
    readonly name: string,
    readonly pool: pg.Pool,
    readonly rowSecurity: boolean,
  ) {
    this.reads = new ReadScope(pool, rowSecurity);
  }
}

/** What a URL is called where it is shown: host:port/database, no credentials. */
export function standbyName(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || '5432'}${u.pathname || '/'}`;
}

/**
 * The hot standbys that catch-up reads may run on (docs/ordering.md,
 * "Standbys and failover"). Each is trusted only while it streams the
 * timeline of the server the tail reads from; the state is re-read by a
 * probe every PROBE_MS and by every read it answers. Reads go to the least
 * loaded trusted standby whose horizon is past what the stream already has;
 * ties go round-robin.
 */
export class Standbys {
  readonly list: readonly Standby[];
  private timer?: NodeJS.Timeout;
  private next = 0;
  private closed = false;

  constructor(
    urls: readonly string[],
    poolSize: number,
    rowSecurity: boolean,
    /** The identity of the server the tail reads from; undefined before it started. */
    private readonly primary: () => ServerIdentity | undefined,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.list = urls.map((url) => {
      const pool = new pg.Pool({
        connectionString: url,
        max: poolSize,
        application_name: 'pgfeed:standby',
        connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
        query_timeout: QUERY_TIMEOUT_MS,
      });
      const standby = new Standby(standbyName(url), pool, rowSecurity);
      pool.on('error', (err) => log.warn({ standby: standby.name, err: err.message }, 'standby connection lost'));
      return standby;
    });
    for (const s of this.list) metrics.standbyStreaming.set({ standby: s.name }, 0);
  }

  /** Probes every standby once (a standby that cannot be reached is logged, not fatal), then every PROBE_MS. */
  async start(): Promise<void> {
    // A daemon whose start failed later on runs start() again: one probe loop.
    if (this.timer) return;
    await Promise.all(this.list.map((s) => this.probe(s)));
    for (const s of this.list) {
      if (s.state !== 'streaming') this.log.warn({ standby: s.name, state: s.state, error: s.error }, 'standby not usable at start; catch-up reads go to the primary until it is');
    }
    this.timer = setInterval(() => {
      for (const s of this.list) void this.probe(s);
    }, PROBE_MS);
    this.timer.unref();
  }

  /**
   * A standby to read after `known` from, or why none: no trusted standby
   * (`unavailable`), or none whose horizon is past `known` (`behind`: it has
   * nothing the stream lacks, and asking again would spin).
   */
  pick(known: Position): Standby | Exclude<FallbackReason, 'failed' | 'untrusted'> {
    const primary = this.primary();
    const trusted = primary ? this.list.filter((s) => s.state === 'streaming' && s.server !== null && readHolds(s.server, primary) === 'holds') : [];
    if (trusted.length === 0) return 'unavailable';
    let best: Standby | null = null;
    for (let i = 0; i < trusted.length; i++) {
      const s = trusted[(this.next + i) % trusted.length];
      if (!isAfter(horizonPosition(s.horizon), known)) continue;
      if (best === null || s.running < best.running) best = s;
    }
    if (best === null) return 'behind';
    this.next = (this.next + 1) % trusted.length;
    return best;
  }

  /** What a read or probe on `s` saw. */
  observed(s: Standby, server: ServerIdentity, horizon: number): void {
    s.server = server;
    s.horizon = horizon;
    if (!s.rowSecurityChecked) return this.setState(s, 'misconfigured');
    s.error = null;
    this.setState(s, this.stateOf(server));
  }

  /** A read or probe on `s` failed. A fault other than the connection (a recovery conflict, say) costs that read only. */
  failed(s: Standby, err: unknown): void {
    s.error = (err as Error).message;
    if (isUnreachable(err) || /timeout|no answer/i.test(s.error)) this.setState(s, 'unreachable');
  }

  /** For /readyz: each standby's state, since when, and how far behind it replays. */
  detail(): Record<string, unknown>[] {
    return this.list.map((s) => ({
      standby: s.name,
      state: s.state,
      since: new Date(s.since).toISOString(),
      horizon: String(s.horizon),
      replay_lag_s: s.replayLagS,
      running: s.running,
      server: s.server && describeServer(s.server),
      error: s.error,
    }));
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await Promise.all(this.list.map((s) => s.pool.end().catch(() => {})));
  }

  private stateOf(server: ServerIdentity): StandbyState {
    const primary = this.primary();
    if (!server.standby) return 'promoted';
    if (primary && (server.system !== primary.system || server.database !== primary.database)) return 'other_server';
    if (server.timeline === null) return 'not_streaming';
    if (primary && server.timeline !== primary.timeline) return 'other_timeline';
    return 'streaming';
  }

  private setState(s: Standby, state: StandbyState): void {
    if (state === s.state) return;
    const was = s.state;
    s.state = state;
    s.since = Date.now();
    this.metrics.standbyStreaming.set({ standby: s.name }, state === 'streaming' ? 1 : 0);
    if (this.closed) return;
    if (state === 'streaming') this.log.info({ standby: s.name, was }, 'standby streaming; catch-up reads may run on it');
    else this.log.warn({ standby: s.name, state, was, error: s.error, server: s.server && describeServer(s.server) }, 'standby not usable; catch-up reads go to the primary or another standby');
  }

  private async probe(s: Standby): Promise<void> {
    if (this.closed) return;
    this.metrics.queries.inc({ kind: 'standby_probe' });
    try {
      const { rows } = await withDeadline(
        s.pool.query<{ system: string; database: string; timeline: number | null; started: number; standby: boolean; horizon: string; lag: number | null }>(
          `SELECT ${IDENTITY_COLUMNS}, pg_snapshot_xmin(pg_current_snapshot())::text AS horizon,
             CASE WHEN pg_is_in_recovery() THEN extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END AS lag`,
        ),
        CONNECT_TIMEOUT_MS + 1_000,
        'standby probe',
      );
      if (!s.rowSecurityChecked) {
        try {
          await checkRowSecurity(s.pool, s.rowSecurity);
          s.rowSecurityChecked = true;
        } catch (err) {
          if (!(err instanceof PgfeedError)) throw err;
          s.error = err.message;
        }
      }
      const r = rows[0];
      s.replayLagS = r.lag === null ? null : Math.max(0, Math.round(r.lag * 1000) / 1000);
      this.observed(s, identityOf(r), Number(r.horizon));
    } catch (err) {
      this.failed(s, err);
      // Not streaming until a probe says so: a failed probe is no proof of the state before.
      if (s.state === 'starting') this.setState(s, 'unreachable');
    }
  }
}
