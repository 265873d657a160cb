import { writeCorsHeaders } from './cors.js';
import type { HttpResponse } from './uws.js';

/** The status and headers of every SSE response: a stream, or the answer that asks the client to retry. Call inside a cork. */
export function writeSseHead(res: HttpResponse): void {
  res.writeStatus('200 OK');
  res.writeHeader('Content-Type', 'text/event-stream');
  res.writeHeader('Cache-Control', 'no-cache');
  // nginx would otherwise buffer the stream.
  res.writeHeader('X-Accel-Buffering', 'no');
  writeCorsHeaders(res);
}
