import type { ErrorCode, PgfeedError } from '../errors.js';
import type { ErrorBody } from '../protocol.js';
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
};

/** `close`: end the connection after this response (uWS then sends `Connection: close`). */
export function sendJson(res: HttpResponse, status: string, body: unknown, headers: Readonly<Record<string, string>> = {}, close = false): void {
  res.cork(() => {
    res.writeStatus(status);
    res.writeHeader('Content-Type', 'application/json');
    res.writeHeader('Cache-Control', 'no-store');
    for (const [k, v] of Object.entries(headers)) res.writeHeader(k, v);
    res.end(typeof body === 'string' ? body : JSON.stringify(body), close);
  });
}

/** `{"error":{"code","message", ...detail}}` with the code's status. */
export function sendError(res: HttpResponse, err: PgfeedError, detail: Record<string, unknown> = {}, headers: Readonly<Record<string, string>> = {}, close = false): void {
  const body: ErrorBody = { error: { code: err.code, message: err.message, ...detail } };
  sendJson(res, STATUS[err.code], body, headers, close);
}
