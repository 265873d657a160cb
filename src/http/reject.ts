import { isUnreachable, queryFailure } from '../db/query-errors.js';
import { PgfeedError, type ErrorCode } from '../errors.js';
import { CursorError } from '../feed/cursor.js';
import { controlFrame, retryFrame } from '../feed/frame.js';
import { UNAVAILABLE_CODES, type UnavailableCode } from '../protocol.js';
import type { RouteContext } from './context.js';
import { LimitError } from './limits.js';
import { writeSseHead } from './sse-head.js';
import { sendError, STATUS } from './status.js';
import type { HttpResponse } from './uws.js';

const UNAVAILABLE: ReadonlySet<ErrorCode> = new Set<UnavailableCode>(UNAVAILABLE_CODES);

function isUnavailable(code: ErrorCode): code is UnavailableCode {
  return UNAVAILABLE.has(code);
}

/** Spread reconnects out: a restart must not bring every client back at once. */
function retryAfterS(): number {
  return 1 + Math.floor(Math.random() * 5);
}

export interface RejectOptions {
  /** The request is an EventSource's: /v1/events with `Accept: text/event-stream`. */
  readonly stream?: boolean;
  readonly headers?: Readonly<Record<string, string>>;
  /** End the connection after the answer: the request's body was not read to its end. */
  readonly close?: boolean;
  /** The request is a HEAD: no body. */
  readonly head?: boolean;
}

/**
 * Answers that end the connection: a stopping daemon's (the retry opens a
 * new one, to another replica or its successor), and a malformed request's
 * (RFC 9112: nothing more on that connection can be trusted).
 */
const CLOSES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['shutting_down', 'invalid_request']);

/**
 * The one error responder. Bad input is a JSON 4xx, which a client must not
 * retry. A temporary condition is a 503 with Retry-After, except for an
 * EventSource: the standard fails a connection for good on any status but
 * 200, so it gets a 200 stream that says why and ends, and the client
 * reconnects after `retry:` with its Last-Event-ID.
 */
export function reject(ctx: RouteContext, res: HttpResponse, err: unknown, opts: RejectOptions = {}): void {
  const e = err instanceof PgfeedError ? err : failedQuery(ctx, err);
  ctx.metrics.rejected.inc({ code: e.code });
  if (opts.stream && isUnavailable(e.code)) return askToRetry(res, e.code, e.message, ctx.retryMs);
  const after = (e instanceof LimitError && e.retryAfterS) || retryAfterS();
  const headers = isUnavailable(e.code) ? { 'Retry-After': String(after), ...opts.headers }
    : STATUS[e.code].startsWith('401') ? { 'WWW-Authenticate': challenge(e.code), ...opts.headers }
    : opts.headers;
  sendError(res, e, e instanceof CursorError ? e.detail : {}, { headers, close: CLOSES.has(e.code) || opts.close === true, head: opts.head });
}

/**
 * The RFC 6750 challenge of a 401: no error when no credential came (the
 * client did not know one is needed), invalid_token when one was refused.
 */
function challenge(code: ErrorCode): string {
  if (code === 'missing_token') return 'Bearer realm="pgfeed"';
  return `Bearer realm="pgfeed", error="invalid_token", error_description="${code}"`;
}

/**
 * A query failed. Unreachable (down, restarting, a lost connection): the
 * client retries. Anything else is a fault that retrying cannot mend (a
 * missing privilege, a dropped column): a 500, and an error in the log with
 * the SQLSTATE and the query's name.
 */
function failedQuery(ctx: RouteContext, err: unknown): PgfeedError {
  const failure = queryFailure(err);
  if (isUnreachable(err)) {
    ctx.log.warn(failure, 'request failed: the database is not reachable');
    return new PgfeedError('database_unavailable');
  }
  ctx.log.error(failure, 'request failed: a query failed for a reason other than the connection');
  return new PgfeedError('internal');
}

/**
 * `retry:`, a `pgfeed.unavailable` control event, and the end of the response
 * with `Connection: close`: the reconnect must not reuse this connection,
 * which may lead to a daemon that is going away.
 */
function askToRetry(res: HttpResponse, code: UnavailableCode, message: string, retryMs: number): void {
  res.cork(() => {
    writeSseHead(res);
    res.end(Buffer.concat([retryFrame(retryMs), controlFrame('pgfeed.unavailable', { code, message })]), true);
  });
}
