import { createHash, timingSafeEqual } from 'node:crypto';
import { bearerToken, authHeaders } from '../auth/credentials.js';
import { PgfeedError } from '../errors.js';
import type { RouteContext } from './context.js';
import { reject } from './reject.js';
import { writeCorsHeaders } from './cors.js';
import { sendJson } from './status.js';
import type { HttpRequest, HttpResponse } from './uws.js';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Whether the request carries the operator token (or none is configured).
 * Compared as digests in constant time, so the answer's timing says nothing
 * about how much of a guess was right. Throws for a malformed header.
 */
function isOperator(ctx: RouteContext, req: HttpRequest): boolean {
  if (!ctx.operatorToken) return true;
  const token = bearerToken(authHeaders(req));
  return token !== undefined && timingSafeEqual(digest(token), digest(ctx.operatorToken));
}

export function healthzRoute() {
  return (res: HttpResponse): void => sendJson(res, '200 OK', { status: 'ok' });
}

/**
 * Ready = this replica can serve: the database answers, LISTEN is up or the
 * tail polls, not closing (src/daemon.ts). The status is for every load
 * balancer; the detail (which names a blocking backend and its query) only
 * for the operator token, when one is set.
 */
export function readyzRoute(ctx: RouteContext) {
  return (res: HttpResponse, req: HttpRequest): void => {
    let detailed: boolean;
    try {
      detailed = isOperator(ctx, req);
    } catch {
      detailed = false;
    }
    let aborted = false;
    res.onAborted(() => (aborted = true));
    void (async () => {
      const detail = await ctx.readiness();
      if (!aborted) sendJson(res, detail.ready ? '200 OK' : '503 Service Unavailable', detailed ? detail : { ready: detail.ready });
    })();
  };
}

/**
 * Answers 401 unless the request carries the operator token (or none is
 * configured); returns whether it did. For the routes that are the
 * operator's alone: /metrics and the inspector's operator view.
 */
export function refusedUnlessOperator(ctx: RouteContext, res: HttpResponse, req: HttpRequest, path: string): boolean {
  try {
    if (isOperator(ctx, req)) return false;
    const given = req.getHeader('authorization') !== '';
    reject(ctx, res, new PgfeedError(given ? 'invalid_token' : 'missing_token', given ? 'That is not the operator token (PGFEED_OPERATOR_TOKEN).' : `${path} needs Authorization: Bearer <operator token>.`));
  } catch (err) {
    reject(ctx, res, err);
  }
  return true;
}

export function metricsRoute(ctx: RouteContext) {
  return (res: HttpResponse, req: HttpRequest): void => {
    if (refusedUnlessOperator(ctx, res, req, '/metrics')) return;
    let aborted = false;
    res.onAborted(() => (aborted = true));
    void ctx.metrics.registry.metrics().then((text) => {
      if (aborted) return;
      res.cork(() => {
        res.writeStatus('200 OK');
        res.writeHeader('Content-Type', ctx.metrics.registry.contentType);
        writeCorsHeaders(res);
        res.end(text);
      });
    });
  };
}
