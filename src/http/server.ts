import { backoffDelay, type Backoff } from '../backoff.js';
import { PgfeedError } from '../errors.js';
import { changesRoute } from './changes-route.js';
import { grantCors, preflightRoute } from './cors.js';
import type { RouteContext } from './context.js';
import { eventsRoute } from './events-route.js';
import { healthzRoute, metricsRoute, readyzRoute } from './ops-routes.js';
import { reject } from './reject.js';
import { requestFault } from './request-guard.js';
import { ticketsRoute } from './tickets-route.js';
import { uiRoutes } from './ui-route.js';
import uWS, { type HttpRequest, type HttpResponse, type TemplatedApp, type us_listen_socket } from './uws.js';

type Handler = (res: HttpResponse, req: HttpRequest) => void;

export interface HttpServer {
  readonly port: number;
  /** Stops accepting connections; open ones are ended by their owners. */
  stopListening(): void;
}

export function createApp(ctx: RouteContext): TemplatedApp {
  /**
   * Every request, before its route: its CORS grant (so that a listed
   * origin can read even the errors), then what uWS lets through that
   * RFC 9110/9112 refuse (request-guard.ts). A HEAD is answered without a
   * body, which on a kept-alive connection would be read as the start of
   * the next response.
   */
  const guarded = (handler: Handler, hasBody = false): Handler => (res, req) => {
    grantCors(ctx.corsOrigins, res, req);
    const head = req.getMethod() === 'head';
    const fault = requestFault(req, hasBody);
    if (!fault) return handler(res, req);
    // A body left unread would be run as the next request: close after the answer.
    if (fault.kind === 'reject') return reject(ctx, res, fault.error, { head, close: hasBody });
    // The length of what follows is ambiguous, and uWS would run it as the next request: close now, unanswered.
    ctx.metrics.rejected.inc({ code: 'invalid_request' });
    ctx.log.debug({ reason: fault.reason }, 'request refused by closing the connection: ambiguous framing');
    res.close();
  };
  const notAllowed = guarded((res, req) => reject(ctx, res, new PgfeedError('method_not_allowed'), { headers: { Allow: 'GET' }, head: req.getMethod() === 'head' }));
  const app = uWS.App();
  // Only with authentication on: without it there is nothing to mint a ticket with, and the path stays a 405 as before.
  if (ctx.auth) {
    app.post('/v1/tickets', guarded(ticketsRoute(ctx, ctx.auth), true))
      .any('/v1/tickets', guarded((res, req) => reject(ctx, res, new PgfeedError('method_not_allowed', 'POST /v1/tickets mints a ticket; no other method is served there.'), { headers: { Allow: 'POST' }, head: req.getMethod() === 'head', close: true }), true));
  }
  for (const [path, handler] of Object.entries(uiRoutes(ctx))) app.get(path, guarded(handler));
  return app
    .get('/v1/events', guarded(eventsRoute(ctx)))
    .get('/v1/changes', guarded(changesRoute(ctx)))
    .get('/healthz', guarded(healthzRoute()))
    .get('/readyz', guarded(readyzRoute(ctx)))
    .get('/metrics', guarded(metricsRoute(ctx)))
    .get('/*', guarded((res) => reject(ctx, res, new PgfeedError('not_found'))))
    .options('/*', guarded(preflightRoute(ctx.corsOrigins)))
    .any('/*', notAllowed);
}

/** Up to 250 ms, 500 ms, 1 s, then 2 s between attempts to bind (see backoff.ts). */
const BIND_RETRY: Backoff = { baseMs: 250, capMs: 2_000 };

/**
 * Binds, retrying for up to `retryMs` while the port is busy. A restarted
 * daemon often finds its port held by the previous process's closing
 * connections (this uWS build does not set SO_REUSEADDR); they clear within
 * a minute, and waiting beats exiting and being restarted in a loop.
 */
export async function listenWithRetry(app: TemplatedApp, host: string, port: number, retryMs: number, onRetry: (err: Error) => void): Promise<HttpServer> {
  const deadline = Date.now() + retryMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await listen(app, host, port);
    } catch (err) {
      if (port === 0 || Date.now() >= deadline) throw err;
      onRetry(err as Error);
      await new Promise((r) => setTimeout(r, backoffDelay(BIND_RETRY, attempt)));
    }
  }
}

export function listen(app: TemplatedApp, host: string, port: number): Promise<HttpServer> {
  return new Promise((resolve, reject) => {
    app.listen(host, port, (socket: us_listen_socket | false) => {
      if (!socket) return reject(new PgfeedError('invalid_config', `cannot listen on ${host}:${port}: the address is in use or not available; set PGFEED_PORT or PGFEED_HOST`));
      let listening = true;
      resolve({
        port: uWS.us_socket_local_port(socket),
        stopListening() {
          if (!listening) return;
          listening = false;
          uWS.us_listen_socket_close(socket);
        },
      });
    });
  });
}
