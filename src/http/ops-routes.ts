import type { RouteContext } from './context.js';
import { writeCorsHeaders } from './cors.js';
import { sendJson } from './status.js';
import type { HttpResponse } from './uws.js';

export function healthzRoute() {
  return (res: HttpResponse): void => sendJson(res, '200 OK', { status: 'ok' });
}

/** Ready = the database answers, LISTEN is up, and the horizon is not stalled. Detail either way. */
export function readyzRoute(ctx: RouteContext) {
  return (res: HttpResponse): void => {
    let aborted = false;
    res.onAborted(() => (aborted = true));
    void (async () => {
      const detail = await ctx.readiness();
      if (!aborted) sendJson(res, detail.ready ? '200 OK' : '503 Service Unavailable', detail);
    })();
  };
}

export function metricsRoute(ctx: RouteContext) {
  return (res: HttpResponse): void => {
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
