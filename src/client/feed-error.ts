/**
 * Why a feed ended, or why a poll failed. `code` is the server's error code
 * (src/errors.ts, docs/errors.md) when the server answered with one, or one
 * of the client's own codes below.
 */
import type { ErrorCode } from '../errors.js';

export type ClientErrorCode =
  /** connect() or poll() was given an option it cannot use; thrown at once. */
  | 'invalid_option'
  /** An HTTP error without pgfeed's JSON error body (a proxy's page, say). */
  | 'http_error'
  /** A 200 that is not text/event-stream: something other than pgfeed answered. */
  | 'not_event_stream'
  /** The request failed before a response: a refused or dropped connection, a DNS failure. */
  | 'network'
  /** An open stream sent nothing, not even a heartbeat, for idleTimeoutMs: the feed dropped it and reconnects. */
  | 'stalled'
  /** getToken() threw or returned something other than a string. */
  | 'token_failed';

export class FeedError extends Error {
  override readonly name = 'FeedError';
  constructor(
    readonly code: ErrorCode | ClientErrorCode,
    message: string,
    /** The HTTP status, when the server answered; null otherwise. */
    readonly status: number | null = null,
    /** The rest of the server's error body (cursor_expired's `earliest`, say). */
    readonly detail: Readonly<Record<string, unknown>> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The FeedError of a non-2xx response: pgfeed's JSON error when it is one. */
export async function responseError(res: Response): Promise<FeedError> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (body.error && typeof body.error.code === 'string') {
      const { code, message, ...detail } = body.error;
      return new FeedError(code as ErrorCode, typeof message === 'string' ? message : code, res.status, detail);
    }
  } catch {
    // not JSON: fall through
  }
  return new FeedError('http_error', `HTTP ${res.status} ${res.statusText}`.trim(), res.status, { body: text.slice(0, 500) });
}

/**
 * Whether a status is worth asking again: 429 and the 5xx family are
 * conditions of the moment; every other 4xx is the same answer next time.
 */
export function retryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/** A Retry-After header (seconds, or an HTTP date) in ms; null when absent or unreadable. */
export function retryAfterMs(res: Response, now = Date.now()): number | null {
  const h = res.headers.get('retry-after');
  if (h === null) return null;
  if (/^\s*\d+\s*$/.test(h)) return Number(h) * 1000;
  const at = Date.parse(h);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}
