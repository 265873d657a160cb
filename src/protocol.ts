/**
 * The wire format of pgfeed's HTTP API: the shapes a client receives, and
 * the one place that writes them. The daemon encodes with these functions and
 * clients read with these types, so this module imports nothing from Node.
 */
import type { ErrorCode } from './errors.js';

/** One change, as read from pgfeed.change_log. `data` stays JSON text: it is never parsed. */
export interface ChangeRow {
  readonly seq: number;
  readonly xid: number;
  readonly project: string;
  readonly type: string;
  readonly op: string | null;
  readonly tbl: string | null;
  readonly data: string | null;
  readonly at: string;
}

/** One change: the `data:` of an SSE event and an element of a page's `events`. */
export interface ChangeEvent {
  readonly seq: number;
  /** The writing transaction's xid8, in decimal: it can exceed 2^53. */
  readonly xid: string;
  readonly project: string;
  readonly type: string;
  readonly op: 'insert' | 'update' | 'delete' | 'truncate' | null;
  readonly table: string | null;
  readonly data: unknown;
  readonly at: string;
}

/** The body of `GET /v1/changes`. */
export interface ChangesPage {
  readonly events: readonly ChangeEvent[];
  readonly next: string | null;
  readonly has_more: boolean;
  /** Why delivery is delayed at the time of the answer, oldest condition first; empty when it is not. */
  readonly degraded: readonly DegradedDetail[];
  /**
   * Present only when retention removed events after the cursor before this
   * page could read them: `events` is empty, `next` null, and the client
   * starts over (after=0, or a since=). As pgfeed.reset on a stream.
   */
  readonly reset?: ControlEvents['pgfeed.reset'];
}

/** The body of `POST /v1/tickets`: `/v1/events?project=…&ticket=<ticket>` accepts it once, until `expires_at` (RFC 3339). */
export interface TicketBody {
  readonly ticket: string;
  readonly expires_at: string;
}

/** The body of every error response. */
export interface ErrorBody {
  readonly error: { readonly code: ErrorCode; readonly message: string; readonly [detail: string]: unknown };
}

/** Event names with this prefix are control events: no `id:`, so they never move a cursor. */
export const CONTROL_PREFIX = 'pgfeed.';

/** The conditions a stream request is told to retry, rather than refused for good. */
export type UnavailableCode = Extract<ErrorCode, 'shutting_down' | 'over_capacity' | 'database_unavailable' | 'subject_over_limit' | 'too_many_streams' | 'rate_limited'>;

/** Every UnavailableCode: a 503 or 429 with Retry-After, or for an EventSource a `pgfeed.unavailable` and `retry:`. */
export const UNAVAILABLE_CODES: readonly UnavailableCode[] = ['shutting_down', 'over_capacity', 'database_unavailable', 'subject_over_limit', 'too_many_streams', 'rate_limited'];

/** The control events, by name, with what their data holds besides `type`. */
export interface ControlEvents {
  /** The daemon cannot serve the stream right now; the response ends and the client reconnects after `retry:`. */
  readonly 'pgfeed.unavailable': { readonly code: UnavailableCode; readonly message: string };
  /** The stream's token expires at `expires_at` (RFC 3339): reconnect with a fresh one before then. */
  readonly 'pgfeed.expiring': { readonly expires_at: string };
  /** The stream's token has expired; the stream ends. Resume with a fresh token and Last-Event-ID. */
  readonly 'pgfeed.expired': { readonly expired_at: string };
  /** The stream's subject was revoked; the stream ends and the subject's older tokens are refused. */
  readonly 'pgfeed.revoked': { readonly reason: string };
  /**
   * Events after the stream's position were pruned: the stream ends, and a
   * resume from its position would be refused with 410 cursor_expired.
   * `earliest`: the seq of the first retained event in delivery order, or null when none is.
   */
  readonly 'pgfeed.reset': { readonly earliest: string | null };
  /** Delivery is delayed: the LISTEN connection is down, or committed rows wait behind an open transaction. */
  readonly 'pgfeed.degraded': DegradedDetail;
  /** Delivery is back to normal after `pgfeed.degraded`. */
  readonly 'pgfeed.ok': Record<string, never>;
}

/** Why delivery is delayed, as `pgfeed.degraded` and the poll endpoint report it. */
export interface DegradedDetail {
  readonly reason: 'listen_down' | 'horizon_stalled';
  /** When the condition began (RFC 3339). */
  readonly since: string;
  /**
   * For `horizon_stalled`: the backend whose open transaction holds the
   * horizon back, when known (null until it is). `pid` and
   * `application_name` are null for a prepared transaction, which has no backend.
   */
  readonly blocker?: { readonly pid: number | null; readonly application_name: string | null; readonly xact_age_ms: number } | null;
}

/** A control event's data. Like a ChangeEvent it has `type`, so one handler can tell every event apart. */
export type ControlEvent<K extends keyof ControlEvents> = { readonly type: K } & ControlEvents[K];

/** `?event_names=`: `on` names each event by its type; `off` leaves names out, so `onmessage` gets every event. */
export type EventNames = 'on' | 'off';

/** No CR, LF or NUL may reach a frame: each would end or split an SSE field. */
export function sanitizeEventName(name: string): string {
  return name.replace(/[\r\n\0]/g, '_');
}

/**
 * The JSON of a ChangeEvent, from a row. `data` is jsonb text from Postgres,
 * which never holds a raw newline, so it is spliced in as is, unparsed.
 */
export function changeEventJson(row: ChangeRow): string {
  return (
    `{"seq":${row.seq},"xid":"${row.xid}","project":${JSON.stringify(row.project)},` +
    `"type":${JSON.stringify(row.type)},"op":${row.op === null ? 'null' : JSON.stringify(row.op)},` +
    `"table":${row.tbl === null ? 'null' : JSON.stringify(row.tbl)},"data":${row.data ?? 'null'},"at":"${row.at}"}`
  );
}

/** A ChangesPage from events already encoded by changeEventJson. */
export function changesPageJson(events: readonly string[], next: string | null, hasMore: boolean, degraded: readonly DegradedDetail[], reset?: ControlEvents['pgfeed.reset']): string {
  const tail = reset ? `,"reset":${JSON.stringify(reset)}` : '';
  return `{"events":[${events.join(',')}],"next":${next === null ? 'null' : JSON.stringify(next)},"has_more":${hasMore},"degraded":${JSON.stringify(degraded)}${tail}}`;
}

/** One SSE event. `data` must be one line (JSON is). */
export function sseEvent(fields: { readonly id?: string; readonly event?: string; readonly data: string }): string {
  const id = fields.id === undefined ? '' : `id: ${fields.id}\n`;
  const event = fields.event === undefined ? '' : `event: ${sanitizeEventName(fields.event)}\n`;
  return `${id}${event}data: ${fields.data}\n\n`;
}

export function controlEvent<K extends keyof ControlEvents>(type: K, data: ControlEvents[K]): string {
  const event: ControlEvent<K> = { type, ...data };
  return sseEvent({ event: type, data: JSON.stringify(event) });
}

export function retryField(ms: number): string {
  return `retry: ${ms}\n\n`;
}

export const PING = ': ping\n\n';
