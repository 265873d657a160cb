// A real SSE client over a socket (node:http, which decodes chunked bodies),
// with an incremental parser. It can stop reading (TCP backpressure).
import http from 'node:http';
import { SseDecoder, type SseEvent as DecodedEvent } from './sse-decoder.js';

export interface SseEvent extends DecodedEvent {
  json: any;
}

export interface SseClient {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly events: SseEvent[];
  /** Data events only (no pgfeed.* control events). */
  readonly seqs: number[];
  readonly retry: number | null;
  readonly pings: number;
  readonly lastEventId: string | null;
  readonly closed: boolean;
  /** The server ended the response cleanly (the last chunk arrived), rather than resetting it. */
  readonly ended: boolean;
  /** The raw body, for error responses. */
  readonly body: string;
  waitFor(pred: (c: SseClient) => boolean, timeoutMs?: number, what?: string): Promise<void>;
  pause(): void;
  resume(): void;
  close(): void;
}

export function connectSse(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { Accept: 'text/event-stream', ...headers }, agent: false });
    req.on('error', reject);
    req.on('response', (res) => {
      const events: SseEvent[] = [];
      const seqs: number[] = [];
      let body = '';
      let pings = 0;
      let closed = false;
      let ended = false;
      const waiters = new Set<() => void>();
      const notify = () => waiters.forEach((w) => w());
      const decoder = new SseDecoder({
        onEvent: ({ id, event, data }) => {
          events.push({ id, event, data, json: safeJson(data) });
          if (id !== null) seqs.push(Number(id));
        },
        onComment: () => pings++,
      });
      res.on('data', (chunk: Buffer) => {
        if (res.statusCode !== 200) body += chunk.toString('utf8');
        else decoder.push(chunk);
        notify();
      });
      const onEnd = () => {
        closed = true;
        notify();
      };
      res.on('end', () => {
        ended = res.complete;
        onEnd();
      });
      res.on('close', onEnd);
      res.on('error', onEnd);
      const client: SseClient = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        events,
        seqs,
        get retry() { return decoder.retry; },
        get pings() { return pings; },
        get lastEventId() { return decoder.lastId; },
        get closed() { return closed; },
        get ended() { return ended; },
        get body() { return body; },
        waitFor(pred, timeoutMs = 15_000, what = 'condition') {
          return new Promise((resolveWait, rejectWait) => {
            if (pred(client)) return resolveWait();
            const check = () => {
              if (pred(client)) {
                cleanup();
                resolveWait();
              }
            };
            const timer = setTimeout(() => {
              cleanup();
              rejectWait(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; have ${seqs.length} events, closed=${closed}`));
            }, timeoutMs);
            const cleanup = () => {
              clearTimeout(timer);
              waiters.delete(check);
            };
            waiters.add(check);
          });
        },
        pause: () => res.pause(),
        resume: () => res.resume(),
        close: () => {
          req.destroy();
          closed = true;
        },
      };
      resolve(client);
    });
  });
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

/** GET returning status and parsed JSON body. */
export async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const r = await fetch(url, { headers });
  const text = await r.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: r.status, body, headers: r.headers };
}
