/**
 * One page of GET /v1/changes: the events after a cursor, optionally
 * long-polling for up to `wait` seconds. A single request, never retried
 * here: the caller owns the loop (and the cursor: pass `next` as `after`).
 */
import type { ChangesPage } from '../protocol.js';
import { FeedError, responseError, retryAfterMs } from './feed-error.js';
import { baseHeaders, checkRequestOptions, endpoint, type RequestOptions } from './options.js';

export interface PollOptions extends RequestOptions {
  /** At most this many events, 1–512 (the server's default when absent). */
  readonly limit?: number;
  /** Seconds, 0–30, to hold the request open when there is nothing yet. */
  readonly wait?: number;
  /** Aborts the request; poll() then rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

export async function poll(options: PollOptions): Promise<ChangesPage> {
  const c = checkRequestOptions(options, 'poll');
  const limit = checkInt(options.limit, 'limit', 1, 512);
  const wait = checkInt(options.wait, 'wait', 0, 30);
  const url = endpoint(c, '/v1/changes', { project: c.project, after: c.after, since: c.since, types: c.types, limit, wait });
  const headers = await baseHeaders(c, 'application/json');
  let res: Response;
  try {
    res = await c.fetch(url, { headers, ...(options.signal ? { signal: options.signal } : {}) });
  } catch (err) {
    if (options.signal?.aborted) throw err;
    throw new FeedError('network', `GET ${url} failed: ${err instanceof Error ? err.message : String(err)}`, null, {}, { cause: err });
  }
  if (!res.ok) {
    const e = await responseError(res);
    const after = retryAfterMs(res);
    throw after === null ? e : new FeedError(e.code, e.message, e.status, { ...e.detail, retryAfterMs: after });
  }
  return (await res.json()) as ChangesPage;
}

function checkInt(v: number | undefined, name: string, min: number, max: number): string | null {
  if (v === undefined) return null;
  if (!Number.isInteger(v) || v < min || v > max) throw new FeedError('invalid_option', `${name} must be an integer from ${min} to ${max}; got ${JSON.stringify(v)}`);
  return String(v);
}
