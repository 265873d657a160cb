import type { ServerIdentity } from '../interfaces.js';

/*
 * Which Postgres server, and which run and history of it, answered a read
 * (ServerIdentity, interfaces.ts). A horizon is a promise about xids: every
 * one below it has ended and none will be handed out again. It holds only
 * as far as that server's WAL does (docs/ordering.md, "Standbys and failover"):
 * - after a crash restart (a new postmaster start time), xids that were
 *   handed out but never reached the WAL may be handed out again;
 * - after a failover (a new timeline) or a restore, the new primary's WAL is
 *   the old one's only up to where it was copied, and so are its xids;
 * - a standby's horizon comes from WAL it replayed, which the primary had
 *   already flushed: it holds on the primary for as long as the standby
 *   follows the primary's timeline, crash restarts of the primary included.
 */

/**
 * The select-list columns (`system`, `database`, `timeline`, `started`,
 * `standby`) that identify the answering server, for a read to return in its
 * own snapshot. pg_walfile_name names the current WAL file, whose first 8 hex
 * digits are the timeline WAL is written on now (pg_control_checkpoint()'s
 * lags a promotion until the next checkpoint); it is refused during
 * recovery, where the WAL receiver's timeline is read instead.
 */
export const IDENTITY_COLUMNS = `(SELECT system_identifier::text FROM pg_control_system()) AS system, current_database() AS database,
  CASE WHEN pg_is_in_recovery() THEN (SELECT CASE WHEN w.status = 'streaming' THEN w.received_tli END FROM pg_stat_wal_receiver w)
       ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS timeline,
  extract(epoch FROM pg_postmaster_start_time())::float8 * 1000 AS started, pg_is_in_recovery() AS standby`;

/** The identity in a row that selected IDENTITY_COLUMNS. */
export function identityOf(row: { system: string; database: string; timeline: number | null; started: number; standby: boolean }): ServerIdentity {
  return { system: row.system, database: row.database, timeline: row.timeline, started: row.started, standby: row.standby };
}

/**
 * Whether a read's horizon holds for the server the tail reads from:
 * - `holds`: it does;
 * - `stale`: it is from a run or a history the tail has left (or a standby
 *   that does not follow it): read again, elsewhere if need be;
 * - `ahead`: it is from a primary run the tail has not reached yet: wait
 *   for the tail to notice, then read again.
 */
export function readHolds(read: ServerIdentity, tail: ServerIdentity): 'holds' | 'stale' | 'ahead' {
  const sameHistory = read.system === tail.system && read.database === tail.database && read.timeline !== null && read.timeline === tail.timeline;
  // A standby replays only WAL the primary flushed: no primary run, however
  // it ended, hands out again an xid below the standby's horizon.
  if (read.standby) return sameHistory ? 'holds' : 'stale';
  if (sameHistory && read.started === tail.started) return 'holds';
  return isNewerRun(read, tail) ? 'ahead' : 'stale';
}

/** Whether `a` is a later run than `b`: a later timeline, or a later start on the same one; another server counts as later. */
export function isNewerRun(a: ServerIdentity, b: ServerIdentity): boolean {
  if (a.system !== b.system || a.database !== b.database) return true;
  if ((a.timeline ?? 0) !== (b.timeline ?? 0)) return (a.timeline ?? 0) > (b.timeline ?? 0);
  return a.started > b.started;
}

/** The same server run on the same history: a primary's horizons carry over between its reads. */
export function sameRun(a: ServerIdentity, b: ServerIdentity): boolean {
  return a.system === b.system && a.database === b.database && a.timeline === b.timeline && a.started === b.started && a.standby === b.standby;
}

/** For logs and /readyz. */
export function describeServer(s: ServerIdentity): Record<string, unknown> {
  return { system: s.system, database: s.database, timeline: s.timeline, started: new Date(s.started).toISOString(), standby: s.standby };
}
