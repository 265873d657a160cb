import type { ErrorCode, PgfeedError } from '../errors.js';
import type { ErrorBody } from '../protocol.js';
import { writeCorsHeaders } from './cors.js';
import type { HttpResponse } from './uws.js';

/** The one table from error code to HTTP status. */
export const STATUS: Record<ErrorCode, string> = {
  missing_project: '400 Bad Request',
  invalid_project: '400 Bad Request',
  invalid_after: '400 Bad Request',
  invalid_last_event_id: '400 Bad Request',
  invalid_types: '400 Bad Request',
  invalid_limit: '400 Bad Request',
  invalid_wait: '400 Bad Request',
  invalid_event_names: '400 Bad Request',
  unknown_parameter: '400 Bad Request',
  duplicate_parameter: '400 Bad Request',
  unknown_cursor: '400 Bad Request',
  cursor_expired: '410 Gone',
  not_found: '404 Not Found',
  method_not_allowed: '405 Method Not Allowed',
  header_too_large: '431 Request Header Fields Too Large',
  over_capacity: '503 Service Unavailable',
  shutting_down: '503 Service Unavailable',
  database_unavailable: '503 Service Unavailable',
  internal: '500 Internal Server Error',
  missing_token: '401 Unauthorized',
  invalid_token: '401 Unauthorized',
  token_expired: '401 Unauthorized',
  token_not_yet_valid: '401 Unauthorized',
  token_revoked: '401 Unauthorized',
  invalid_ticket: '401 Unauthorized',
  ticket_used: '401 Unauthorized',
  project_forbidden: '403 Forbidden',
  types_forbidden: '403 Forbidden',
  subject_over_limit: '429 Too Many Requests',
  invalid_ticket_request: '400 Bad Request',
  body_too_large: '413 Content Too Large',
  invalid_config: '500 Internal Server Error',
  migration_failed: '500 Internal Server Error',
  database_too_new: '500 Internal Server Error',
  settings_mismatch: '500 Internal Server Error',
  row_security_mismatch: '500 Internal Server Error',
  database_not_migrated: '500 Internal Server Error',
  invalid_since: '400 Bad Request',
  conflicting_cursors: '400 Bad Request',
  too_many_streams: '429 Too Many Requests',
  rate_limited: '429 Too Many Requests',
  invalid_request: '400 Bad Request',
};

export interface SendOptions {
  readonly headers?: Readonly<Record<string, string>>;
  /** End the connection after this response (uWS then sends `Connection: close`). */
  readonly close?: boolean;
  /** The answer to a HEAD: the status and headers only. A body would be read as the start of the next response. */
  readonly head?: boolean;
}

export function sendJson(res: HttpResponse, status: string, body: unknown, opts: SendOptions = {}): void {
  res.cork(() => {
    res.writeStatus(status);
    res.writeHeader('Content-Type', 'application/json');
    res.writeHeader('Cache-Control', 'no-store');
    writeCorsHeaders(res);
    for (const [k, v] of Object.entries(opts.headers ?? {})) res.writeHeader(k, v);
    // endWithoutBody takes no arguments here: given a length, this uWS build waits for a body.
    if (opts.head) res.endWithoutBody();
    else res.end(typeof body === 'string' ? body : JSON.stringify(body), opts.close);
  });
}

/** `{"error":{"code","message", ...detail}}` with the code's status. */
export function sendError(res: HttpResponse, err: PgfeedError, detail: Record<string, unknown> = {}, opts: SendOptions = {}): void {
  const body: ErrorBody = { error: { code: err.code, message: err.message, ...detail } };
  sendJson(res, STATUS[err.code], body, opts);
}
