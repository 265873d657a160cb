import { backoffDelay, type Backoff } from '../backoff.js';
import { PgfeedError } from '../errors.js';
import { changesRoute } from './changes-route.js';
import type { RouteContext } from './context.js';
import { eventsRoute } from './events-route.js';
import { healthzRoute, metricsRoute, readyzRoute } from './ops-routes.js';
import { reject } from './reject.js';
import { ticketsRoute } from './tickets-route.js';
import { uiRoutes } from './ui-route.js';
import uWS, { type HttpRequest, type HttpResponse, type TemplatedApp, type us_listen_socket } from './uws.js';

/**
 * The most header bytes (names and values) a request may carry. uWS only
 * bounds headers that arrive split across reads; one that arrives whole is
 * checked here, before any route does work for it.
 */
export const MAX_HEADER_BYTES = 8 * 1024;

type Handler = (res: HttpResponse, req: HttpRequest) => void;

export interface HttpServer {
  readonly port: number;
  /** Stops accepting connections; open ones are ended by their owners. */
  stopListening(): void;
}

export function createApp(ctx: RouteContext): TemplatedApp {
  const bounded = (handler: Handler): Handler => (res, req) => {
    let bytes = 0;
    req.forEach((name, value) => (bytes += name.length + value.length + 4));
    if (bytes <= MAX_HEADER_BYTES) return handler(res, req);
    reject(ctx, res, new PgfeedError('header_too_large', `The request headers are ${bytes} bytes; at most ${MAX_HEADER_BYTES} are accepted. Send fewer or smaller headers.`));
  };
  const app = uWS.App();
  // Only with authentication on: without it there is nothing to mint a ticket with, and the path stays a 405 as before.
  if (ctx.auth) {
    app.post('/v1/tickets', bounded(ticketsRoute(ctx, ctx.auth)))
      .any('/v1/tickets', (res) => reject(ctx, res, new PgfeedError('method_not_allowed', 'POST /v1/tickets mints a ticket; no other method is served there.'), { headers: { Allow: 'POST' } }));
  }
  for (const [path, handler] of Object.entries(uiRoutes(ctx))) app.get(path, bounded(handler));
  return app
    .get('/v1/events', bounded(eventsRoute(ctx)))
    .get('/v1/changes', bounded(changesRoute(ctx)))
    .get('/healthz', bounded(healthzRoute()))
    .get('/readyz', bounded(readyzRoute(ctx)))
    .get('/metrics', bounded(metricsRoute(ctx)))
    .get('/*', bounded((res) => reject(ctx, res, new PgfeedError('not_found'))))
    .any('/*', (res) => reject(ctx, res, new PgfeedError('method_not_allowed'), { headers: { Allow: 'GET' } }));
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
