/**
 * Every error pgfeed reports to a user, by stable code. The HTTP layer maps
 * codes to status codes in one table (src/http/status.ts); docs/errors.md
 * documents each code, and a test checks that it does.
 */
export const ERROR_CODES = {
  // HTTP request errors
  missing_project: 'The project parameter is required: /v1/events?project=<name>.',
  invalid_project: 'project must be 1-200 characters with no control characters.',
  invalid_after: 'after must be 0, "now", or the seq of an event (a non-negative integer up to 2^53-1).',
  invalid_last_event_id: 'Last-Event-ID must be the seq of an event (a non-negative integer up to 2^53-1).',
  invalid_types: 'types must be a comma-separated list of up to 32 event names or prefix globs such as orders.* (letters, digits, _ . : - and a trailing *).',
  invalid_limit: 'limit must be an integer from 1 to 512.',
  invalid_wait: 'wait must be an integer number of seconds from 0 to 30.',
  invalid_event_names: 'event_names must be on (each event named by its type) or off (no event: lines, so onmessage receives every event).',
  unknown_parameter: 'This endpoint does not take that parameter; remove it.',
  duplicate_parameter: 'Each parameter may be given once.',
  unknown_cursor: 'No event has that seq in this project. Resume from a seq you received, or from after=0.',
  cursor_expired: 'That event is older than the retained history. Resume from the earliest available seq, or after=0.',
  not_found: 'No such endpoint. See /v1/events, /v1/changes, /healthz, /readyz and /metrics.',
  method_not_allowed: 'Only GET is supported.',
  header_too_large: 'The request target and headers are too large (at most 8 KiB in all). Send a shorter URL, or fewer or smaller headers.',
  over_capacity: 'The daemon is at its stream limit. Retry after the Retry-After delay, or use another replica.',
  shutting_down: 'The daemon is shutting down. Reconnect; another replica or the restarted daemon will resume your cursor.',
  database_unavailable: 'The database is not reachable right now. Retry shortly.',
  internal: 'A query failed for a reason other than the connection, which retrying will not mend. The daemon logged it at level error with its SQLSTATE; tell its operator.',
  missing_token: 'This daemon requires a token: send Authorization: Bearer <JWT>, or a stream ticket (?ticket=, from POST /v1/tickets).',
  invalid_token: 'The token is not valid: malformed, signed with another key or algorithm, or with the wrong issuer, audience or pgfeed claim. Get a new token from your issuer.',
  token_expired: 'The token has expired (exp). Get a fresh one and resume with Last-Event-ID.',
  token_not_yet_valid: 'The token is not valid yet (nbf). Check the clocks of the issuer and this host, or wait.',
  token_revoked: 'The token\'s subject was revoked after the token was issued (iat). Get a token issued after the revocation.',
  invalid_ticket: 'The stream ticket is unknown or has expired. Mint a new one with POST /v1/tickets.',
  ticket_used: 'The stream ticket was used already; a ticket opens one stream (and its reconnects, which send Last-Event-ID). Mint a new one with POST /v1/tickets.',
  project_forbidden: 'The token does not allow this project. Ask for a token whose pgfeed.projects names it.',
  types_forbidden: 'The token does not allow these types. Ask only for types the token\'s pgfeed.types allows, or leave types out.',
  subject_over_limit: 'The token\'s subject has as many open streams on this daemon as it may. Close one, or retry after the Retry-After delay.',
  invalid_ticket_request: 'The body must be a JSON object {"project": "<name>", "types": ["<pattern>", ...]} (types optional).',
  body_too_large: 'The request body is too large (at most 4 KiB).',
  invalid_since: 'since must be an RFC 3339 date-time with an offset, such as 2026-01-31T12:00:00Z or 2026-01-31T13:00:00.5+01:00.',
  conflicting_cursors: 'Give since or after, not both: each says where the stream starts.',
  too_many_streams: 'This client address holds as many streams and long-polls as it may. Close one, or retry after the Retry-After delay.',
  rate_limited: 'This client address opens new streams and polls faster than it may. Retry after the Retry-After delay.',
  invalid_request: 'The request is malformed (RFC 9110/9112): a repeated or invalid Host, conflicting Content-Length, Transfer-Encoding on a request without a body, or a control character in a header value. Fix the client or the proxy in front.',
  // start-up errors
  invalid_config: 'A configuration value or command-line argument is invalid; pgfeed <command> --help shows the usage.',
  migration_failed: 'A migration failed; the database is left at the last migration that succeeded.',
  database_too_new: 'The database was migrated by a newer pgfeed. Upgrade pgfeed.',
  settings_mismatch: 'pgfeed.settings (channel, notify) differ from this daemon\'s configuration (PGFEED_NOTIFY follows PGFEED_WAKE). Change them for every replica with pgfeed migrate --channel ... --notify ..., or configure this daemon like the others.',
  row_security_mismatch: 'PGFEED_ROW_SECURITY does not match what Postgres does for the daemon\'s role: the policies on pgfeed.change_log would either not bind it, or hide every row from it. See docs/database-role.md.',
  database_not_migrated: 'The database lacks migrations this pgfeed needs, and serve was told not to migrate (PGFEED_MIGRATE=false). Run pgfeed migrate as the schema\'s owner.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class PgfeedError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ERROR_CODES[code], options);
    this.code = code;
    this.name = 'PgfeedError';
  }
}
