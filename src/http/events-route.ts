import { PgfeedError } from '../errors.js';
import { retryFrame } from '../feed/frame.js';
import { Subscriber } from '../feed/subscriber.js';
import { CursorError, resolveCursor } from './cursor.js';
import { parseStreamParams } from './params.js';
import { sendError } from './status.js';
import { SseSink } from './sse-sink.js';
import type { OpenStream } from './streams.js';
import type { RouteContext } from './server.js';
import type { HttpRequest, HttpResponse } from './uws.js';

/** GET /v1/events: validate everything before the first byte, then stream. */
export function eventsRoute(ctx: RouteContext) {
  return (res: HttpResponse, req: HttpRequest): void => {
    const sink = new SseSink(res);
    const stream: OpenStream = { sink };
    res.onAborted(() => {
      sink.aborted();
      stream.sub?.close();
      ctx.streams.sse.delete(stream);
    });
    // Everything from req must be read now: it is gone after the first await.
    const query = req.getQuery() ?? '';
    // getHeader() returns only the first of repeated headers: collect them all.
    const lastEventIds: string[] = [];
    req.forEach((name, value) => {
      if (name === 'last-event-id') lastEventIds.push(value);
    });
    void open(ctx, res, sink, stream, query, lastEventIds);
  };
}

async function open(ctx: RouteContext, res: HttpResponse, sink: SseSink, stream: OpenStream, query: string, lastEventIds: string[]): Promise<void> {
  let release: (() => void) | null = null;
  try {
    if (ctx.closing()) throw new PgfeedError('shutting_down');
    release = ctx.streams.admit();
    if (!release) throw new PgfeedError('over_capacity');
    // Two cursors are ambiguous: refuse rather than pick one.
    if (lastEventIds.length > 1) throw new PgfeedError('duplicate_parameter', 'The Last-Event-ID header is sent more than once; send it once.');
    const params = parseStreamParams(query, lastEventIds[0] ?? '');
    const pos = await resolveCursor(params.cursor, params.filter, ctx.pool, ctx.feed.tail, ctx.feed.metrics);
    if (!sink.open) return;
    if (ctx.closing()) throw new PgfeedError('shutting_down');
    res.cork(() => {
      res.writeStatus('200 OK');
      res.writeHeader('Content-Type', 'text/event-stream');
      res.writeHeader('Cache-Control', 'no-cache');
      res.writeHeader('X-Accel-Buffering', 'no');
      res.write(retryFrame(ctx.retryMs));
    });
    stream.sub = new Subscriber(ctx.feed, sink, params.filter, pos);
    ctx.streams.sse.add(stream);
    stream.sub.start();
  } catch (err) {
    if (!sink.open) return;
    sink.aborted(); // the response is answered below; nothing else may touch it
    ctx.reject(res, err);
  } finally {
    release?.();
  }
}

export function rejectWith(ctx: { retryAfterS: () => number; onRejected(code: string): void; log: RouteContext['log'] }) {
  return (res: HttpResponse, err: unknown): void => {
    if (err instanceof CursorError) {
      ctx.onRejected(err.code);
      return sendError(res, err, err.detail);
    }
    if (err instanceof PgfeedError) {
      ctx.onRejected(err.code);
      const headers: Record<string, string> = err.code === 'over_capacity' || err.code === 'shutting_down' || err.code === 'database_unavailable'
        ? { 'Retry-After': String(ctx.retryAfterS()) }
        : {};
      return sendError(res, err, {}, headers);
    }
    // A query failed: the database is down or restarting. The client retries.
    ctx.log.warn({ err: (err as Error).message }, 'request failed');
    ctx.onRejected('database_unavailable');
    sendError(res, new PgfeedError('database_unavailable'), {}, { 'Retry-After': String(ctx.retryAfterS()) });
  };
}
