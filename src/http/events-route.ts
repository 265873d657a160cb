import { authHeaders } from '../auth/credentials.js';
import { PgfeedError } from '../errors.js';
import { controlFrame, retryFrame } from '../feed/frame.js';
import type { RouteContext } from './context.js';
import { clientAddress } from './client-address.js';
import { parseStreamParams, type EventsParams } from './params.js';
import { admit, type Admitted, type RequestInput } from './pipeline.js';
import { reject } from './reject.js';
import { writeSseHead } from './sse-head.js';
import { SseSink } from './sse-sink.js';
import type { OpenStream } from './streams.js';
import type { HttpRequest, HttpResponse } from './uws.js';

/** GET /v1/events: validate everything before the first byte, then stream. */
export function eventsRoute(ctx: RouteContext) {
  return (res: HttpResponse, req: HttpRequest): void => {
    let stream: OpenStream | undefined;
    let leave = () => {};
    // Whoever closes the stream (the client, a shutdown, the slow-client timer), it frees its places.
    const sink = new SseSink(res, () => {
      leave();
      if (!stream) return;
      stream.sub.close();
      ctx.streams.sse.delete(stream);
    });
    // Everything from req must be read now: it is gone after the first await.
    const query = req.getQuery() ?? '';
    // An EventSource sends this; it gives up for good on any status but 200.
    const eventSource = (req.getHeader('accept') ?? '').includes('text/event-stream');
    // getHeader() returns only the first of repeated headers: collect them all.
    const lastEventIds: string[] = [];
    req.forEach((name, value) => {
      if (name === 'last-event-id') lastEventIds.push(value);
    });
    const input: RequestInput = {
      client: clientAddress(res, req, ctx.trustedProxyHeader),
      query,
      headers: authHeaders(req),
      resuming: lastEventIds.length > 0,
      tickets: true,
    };
    void open(ctx, res, sink, input, lastEventIds, eventSource, (s, l) => {
      stream = s;
      leave = l;
    });
  };
}

async function open(
  ctx: RouteContext, res: HttpResponse, sink: SseSink, input: RequestInput, lastEventIds: readonly string[], eventSource: boolean,
  opened: (stream: OpenStream, leave: () => void) => void,
): Promise<void> {
  let admitted: Admitted<EventsParams> | undefined;
  try {
    admitted = await admit(ctx, input, (query) => {
      // Two cursors are ambiguous: refuse rather than pick one.
      if (lastEventIds.length > 1) throw new PgfeedError('duplicate_parameter', 'The Last-Event-ID header is sent more than once; send it once.');
      return parseStreamParams(query, lastEventIds[0]);
    });
    if (!sink.open) return admitted.leave();
    if (ctx.closing()) throw new PgfeedError('shutting_down');
    const { params, filter, pos, access } = admitted;
    const degraded = ctx.health.current();
    res.cork(() => {
      writeSseHead(res);
      // However the stream ends, the client reconnects on a new connection:
      // one kept alive could lead back to a daemon that is shutting down.
      res.writeHeader('Connection', 'close');
      res.write(retryFrame(ctx.retryMs));
      // A stream that opens while delivery is delayed is told before any
      // event; from here on it hears each change with the others (in the
      // same tick as this, it joins ctx.streams.sse below).
      if (degraded) res.write(controlFrame('pgfeed.degraded', degraded));
    });
    const stream: OpenStream = {
      sink,
      sub: ctx.feed.subscribe(sink, filter, pos, params.eventNames),
      access,
      project: filter.project,
      types: filter.types,
      openedAt: Date.now(),
    };
    ctx.streams.sse.add(stream);
    opened(stream, admitted.leave);
    ctx.auth?.watch(stream);
  } catch (err) {
    admitted?.leave();
    if (!sink.open) return;
    sink.detach(); // the response is answered below; nothing else may touch it
    reject(ctx, res, err, { stream: eventSource });
  } finally {
    admitted?.release();
  }
}
