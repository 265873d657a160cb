import type { HttpRequest, HttpResponse } from './uws.js';

/**
 * CORS: an allowlist of origins (PGFEED_CORS_ORIGINS). A listed origin's
 * pages may read every response, with credentials (cookies, and later a
 * bearer token); for any other origin, or none, not one CORS header is
 * sent, so the browser keeps the response from the page.
 */

/** The request headers a listed origin's page may send (a preflight names them). */
const ALLOWED_HEADERS = ['authorization', 'cache-control', 'content-type', 'last-event-id'];
/** The methods a listed origin's page may use: POST mints a stream ticket (/v1/tickets, with authentication on). */
const ALLOWED_METHODS = ['GET', 'POST'];
/** How long a browser may cache a preflight's answer. */
const MAX_AGE_S = 600;

/** Each response's CORS headers, written by every responder after the status (status.ts, sse-head.ts). */
const granted = new WeakMap<HttpResponse, Readonly<Record<string, string>>>();

/** Reads the request's Origin (call before any await) and remembers what its responses carry. */
export function grantCors(allowed: ReadonlySet<string>, res: HttpResponse, req: HttpRequest): void {
  const origin = req.getHeader('origin');
  if (!origin || !allowed.has(origin)) return;
  granted.set(res, {
    'Access-Control-Allow-Origin': origin,
    'Access-Control-Allow-Credentials': 'true',
    // A fetch() of /v1/changes reads these when it is told to come back later.
    'Access-Control-Expose-Headers': 'Retry-After',
    Vary: 'Origin',
  });
}

/** Call inside a cork, after writeStatus. */
export function writeCorsHeaders(res: HttpResponse): void {
  const h = granted.get(res);
  if (h) for (const [k, v] of Object.entries(h)) res.writeHeader(k, v);
}

/**
 * OPTIONS: a preflight from a listed origin asking for GET and allowed
 * headers is granted; anything else gets the plain answer, `Allow`, and no
 * CORS header. 204 either way: the browser decides from the headers.
 */
export function preflightRoute(allowed: ReadonlySet<string>) {
  return (res: HttpResponse, req: HttpRequest): void => {
    const path = req.getUrl();
    const origin = req.getHeader('origin');
    const method = req.getHeader('access-control-request-method');
    const asked = req.getHeader('access-control-request-headers').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean);
    const grant = allowed.has(origin) && ALLOWED_METHODS.includes(method) && asked.every((h) => ALLOWED_HEADERS.includes(h));
    res.cork(() => {
      res.writeStatus('204 No Content');
      res.writeHeader('Allow', path === '/v1/tickets' ? 'POST, OPTIONS' : 'GET, OPTIONS');
      if (grant) {
        res.writeHeader('Access-Control-Allow-Origin', origin);
        res.writeHeader('Access-Control-Allow-Credentials', 'true');
        res.writeHeader('Access-Control-Allow-Methods', ALLOWED_METHODS.join(', '));
        if (asked.length) res.writeHeader('Access-Control-Allow-Headers', asked.join(', '));
        res.writeHeader('Access-Control-Max-Age', String(MAX_AGE_S));
      }
      if (allowed.size) res.writeHeader('Vary', 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers');
      // 204 has no body and no Content-Length (RFC 9110 8.6).
      res.endWithoutBody();
    });
  };
}
