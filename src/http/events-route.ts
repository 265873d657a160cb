import { PgfeedError } from '../errors.js';
import { retryFrame } from '../feed/frame.js';
import type { RouteContext } from './context.js';
import { clientAddress } from './client-address.js';
import { parseStreamParams, type EventsParams } from './params.js';
import { admit, type Admitted } from './pipeline.js';
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
    const client = clientAddress(res, req, ctx.trustedProxyHeader);
    const query = req.getQuery() ?? '';
    const eventSource = (req.getHeader('accept') ?? '').includes('text/event-stream');
    // getHeader() returns only the first of repeated headers: collect them all.
    const lastEventIds: string[] = [];
    req.forEach((name, value) => {
      if (name === 'last-event-id') lastEventIds.push(value);
    });
    void open(ctx, res, sink, { client, query, lastEventIds, eventSource }, (s, l) => {
      stream = s;
      leave = l;
    });
  };
}

/** What open() needs of the request, read before its first await. */
interface StreamRequest {
  readonly client: string;
  readonly query: string;
  readonly lastEventIds: readonly string[];
  /** An EventSource sends `Accept: text/event-stream`; it gives up for good on any status but 200. */
  readonly eventSource: boolean;
}

async function open(ctx: RouteContext, res: HttpResponse, sink: SseSink, r: StreamRequest, opened: (stream: OpenStream, leave: () => void) => void): Promise<void> {
  let admitted: Admitted<EventsParams> | undefined;
  try {
    admitted = await admit(ctx, r.client, () => {
      // Two cursors are ambiguous: refuse rather than pick one.
      if (r.lastEventIds.length > 1) throw new PgfeedError('duplicate_parameter', 'The Last-Event-ID header is sent more than once; send it once.');
      return parseStreamParams(r.query, r.lastEventIds[0]);
    });
    if (!sink.open) return admitted.leave();
    if (ctx.closing()) throw new PgfeedError('shutting_down');
    const { params, pos } = admitted;
    res.cork(() => {
      writeSseHead(res);
      // However the stream ends, the client reconnects on a new connection:
      // one kept alive could lead back to a daemon that is shutting down.
      res.writeHeader('Connection', 'close');
      res.write(retryFrame(ctx.retryMs));
    });
    const stream: OpenStream = { sink, sub: ctx.feed.subscribe(sink, params.filter, pos, params.eventNames) };
    ctx.streams.sse.add(stream);
    opened(stream, admitted.leave);
  } catch (err) {
    admitted?.leave();
    if (!sink.open) return;
    sink.detach(); // the response is answered below; nothing else may touch it
    reject(ctx, res, err, { stream: r.eventSource });
  } finally {
    admitted?.release();
  }
}
