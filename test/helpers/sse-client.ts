// A real SSE client over a socket (node:http, which decodes chunked bodies),
// with an incremental parser. It can stop reading (TCP backpressure).
import http from 'node:http';

export interface SseEvent {
  id: string | null;
  event: string;
  data: string;
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
      let buf = '';
      let body = '';
      let retry: number | null = null;
      let pings = 0;
      let lastEventId: string | null = null;
      let closed = false;
      let ended = false;
      let field: { id: string | null; event: string; data: string[] } = { id: null, event: 'message', data: [] };
      const waiters = new Set<() => void>();
      const notify = () => waiters.forEach((w) => w());
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (res.statusCode !== 200) {
          body += chunk;
          return;
        }
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).replace(/\r$/, '');
          buf = buf.slice(nl + 1);
          if (line === '') {
            if (field.data.length) {
              const data = field.data.join('\n');
              const ev: SseEvent = { id: field.id, event: field.event, data, json: safeJson(data) };
              events.push(ev);
              if (ev.id !== null) {
                lastEventId = ev.id;
                seqs.push(Number(ev.id));
              }
            }
            field = { id: null, event: 'message', data: [] };
            continue;
          }
          if (line.startsWith(':')) {
            pings++;
            continue;
          }
          const colon = line.indexOf(':');
          const name = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (name === 'id') field.id = value;
          else if (name === 'event') field.event = value;
          else if (name === 'data') field.data.push(value);
          else if (name === 'retry') retry = Number(value);
        }
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
        get retry() { return retry; },
        get pings() { return pings; },
        get lastEventId() { return lastEventId; },
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
