/**
 * Shared types of pgfeed.
 *
 * Glossary
 * - seq: the change_log primary key. Unique, allocated at INSERT. It is the
 *   public cursor (SSE `id:`, `after=`, `Last-Event-ID`) but NOT the order.
 * - xid: the writing transaction's id (xid8). All rows of a transaction share it.
 * - position: (xid, seq), the delivery order. A subscriber delivers an event
 *   only if its position is greater than the last one it delivered.
 * - horizon: pg_snapshot_xmin(pg_current_snapshot()). Every transaction below
 *   it has ended, so rows below it are final: no reader will ever see a new
 *   row appear there. Only rows below the horizon are delivered.
 * - head: how far the shared tail has read: every event before it is in the
 *   ring (or was evicted from it). It may be a horizon, (xid, 0), not a row.
 * - last row: the position of the last real row the tail read. Positions that
 *   are kept (subscriber positions, the ring's start) are always real rows:
 *   after a crash Postgres may hand out again xids that were assigned but
 *   never made durable, so a horizon seen before a crash can be ahead of rows
 *   committed after it. A durable row's xid is never reused.
 * - ring: the bounded in-memory window of recent events with their encoded frames.
 * - filter: one project plus optional type patterns (exact names or `prefix*`).
 */
import type { ChangeRow } from './protocol.js';

/** A point in delivery order. Compare with `comparePositions`, never by seq. */
export interface Position {
  readonly xid: number;
  readonly seq: number;
}

export interface Filter {
  readonly project: string;
  /** Exact names or prefix globs ending in `*`. Empty means every type. */
  readonly types: readonly string[];
}

/** A cursor as a client gives it: the start of history, the head, an event's seq, or a time. */
export type Cursor =
  | { readonly kind: 'start' }
  | { readonly kind: 'now' }
  | { readonly kind: 'seq'; readonly seq: number }
  /** `since=`: an RFC 3339 time, as given (Postgres reads it, to the microsecond). */
  | { readonly kind: 'since'; readonly at: string };

// ChangeRow lives with its encoder in protocol.ts, whose typings a browser
// build of pgfeed/client reads without Node's.
export type { ChangeRow };

/** A change made ready for the wire: its JSON and its SSE frame, encoded once. */
export interface FeedEvent {
  readonly pos: Position;
  readonly project: string;
  readonly type: string;
  readonly json: string;
  readonly frame: Buffer;
}

/** Which Postgres server, run and history answered a read (db/server-identity.ts says why each part matters). */
export interface ServerIdentity {
  /** pg_control_system().system_identifier: one per initdb, shared by every standby copied from it. */
  readonly system: string;
  readonly database: string;
  /**
   * The WAL timeline: a primary's own, or the one a standby receives while
   * it streams. Null: a standby that is not streaming, or whose WAL receiver
   * this role may not see (it needs pg_read_all_stats).
   */
  readonly timeline: number | null;
  /** pg_postmaster_start_time(), epoch ms: a new value is a new server run. */
  readonly started: number;
  /** In recovery: a hot standby. */
  readonly standby: boolean;
}

export interface Batch {
  readonly rows: ChangeRow[];
  /** The horizon xid the batch was read under. */
  readonly horizon: number;
  /** Everything matching the filter before this position has been returned. */
  readonly covered: Position;
  /** True when the batch was cut at its limit: read again from `covered`. */
  readonly full: boolean;
  /** Unfiltered reads only: committed rows exist at or above the horizon, waiting for it to pass. */
  readonly held?: boolean;
  /** The server, run and timeline that answered: a horizon holds only for them (db/server-identity.ts). */
  readonly server: ServerIdentity;
  /** The pruned mark the read saw (its project's, or the global one for the tail): every row at or below it is gone. START: none. */
  readonly pruned: Position;
  /**
   * Set when retention removed rows after the read's position before it ran
   * (the mark passed it): the rows returned then follow a gap. `earliest`:
   * the project's first retained event (filtered reads only), or null.
   */
  readonly reset: { readonly earliest: number | null } | null;
  /** The oldest and newest created_at of the rows, epoch ms to the microsecond: unfiltered reads only (null: no rows, or a filtered read). */
  readonly written?: { readonly oldest: number; readonly newest: number } | null;
}
