import { PgfeedError } from '../errors.js';
import type { HttpRequest } from './uws.js';

/**
 * The most bytes a request's target (path and query) and headers (names
 * and values) may add up to. uWS only bounds a head that arrives split
 * across reads (at 4 KiB); one that arrives whole is checked here, before
 * any route does work for it.
 */
export const MAX_HEADER_BYTES = 8 * 1024;

/**
 * What is wrong with a request head that uWebSockets.js v20.30 lets through,
 * or null. See docs/http-hardening.md for what its parser refuses itself
 * (mostly by holding the socket until its 10 s timeout) and what it cannot
 * show pgfeed at all.
 *
 * - `frame`: the body's length is ambiguous (two different Content-Length
 *   values, or Transfer-Encoding on a request that has no body). uWS goes on
 *   parsing the bytes after the head as the next request whatever pgfeed
 *   answers, so the only safe answer is to close the connection at once
 *   (RFC 9112 6.3; the request-smuggling shape behind a proxy that reads
 *   the other header).
 * - `invalid_request`: RFC 9110/9112 say to refuse it with a 400: more than
 *   one Host, a Host that is not a host[:port] (RFC 9112 3.2), a DEL in a
 *   header value (RFC 9110 5.5; uWS refuses the other control bytes).
 */
export type RequestFault = { readonly kind: 'frame'; readonly reason: string } | { readonly kind: 'reject'; readonly error: PgfeedError };

// RFC 3986 host: an IP literal in brackets or a reg-name (unreserved, pct-encoded, sub-delims), then an optional port.
const HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(:\d{0,5})?$/;

export function requestFault(req: HttpRequest, hasBody = false): RequestFault | null {
  let bytes = req.getUrl().length + (req.getQuery() ?? '').length;
  let hosts = 0;
  let host = '';
  const lengths = new Set<string>();
  let transferEncoding = false;
  let del = '';
  req.forEach((name, value) => {
    bytes += name.length + value.length + 4;
    if (name === 'host') {
      hosts++;
      host = value;
    } else if (name === 'content-length') lengths.add(value);
    else if (name === 'transfer-encoding') transferEncoding = true;
    if (!del && value.includes('\x7f')) del = name;
  });
  if (bytes > MAX_HEADER_BYTES) {
    return { kind: 'reject', error: new PgfeedError('header_too_large', `The request's target and headers are ${bytes} bytes; at most ${MAX_HEADER_BYTES} are accepted. Send a shorter URL, or fewer or smaller headers.`) };
  }
  if (lengths.size > 1) return { kind: 'frame', reason: 'Content-Length is sent with different values' };
  if ([...lengths].some((v) => !/^\d{1,15}$/.test(v))) return { kind: 'frame', reason: 'Content-Length is not a number' };
  if (transferEncoding && !hasBody) return { kind: 'frame', reason: 'Transfer-Encoding on a request without a body' };
  const invalid = (why: string) => ({ kind: 'reject', error: new PgfeedError('invalid_request', `${why}; fix the client or the proxy in front.`) }) as const;
  if (hosts > 1) return invalid(`The Host header is sent ${hosts} times (RFC 9112 3.2: exactly once)`);
  if (!HOST.test(host)) return invalid('The Host header is not a host name or address with an optional port (RFC 9112 3.2)');
  if (del) return invalid(`The ${del.slice(0, 40)} header holds a DEL character (RFC 9110 5.5)`);
  return null;
}
