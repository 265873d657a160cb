// One SSE subscriber on a raw socket, as the load generator runs thousands of
// them per process. It records every event id it receives (for the
// exactly-once / order check at the end), the commit→arrival latency read
// from the row's sent_us field, and reconnects like EventSource: after the
// server's `retry:` delay, sending Last-Event-ID.

import net from 'node:net';
import { SseParser, type SseEvent } from './sse-parser.js';

export interface ClientTarget {
  host: string;
  port: number;
  localAddress?: string;
}

export interface ClientSpec {
  project: string;
  /** Path and query, e.g. /v1/events?project=p1&after=0 */
  path: string;
  /** Last-Event-ID to send on the first connection (catch-up scenarios). */
  lastEventId?: string;
  /** The server's port when it is not the generator's: streams spread over several servers (fleet). */
  port?: number;
}

export interface ClientHooks {
  /** Arrival minus the row's sent_us: commit→client latency in µs. */
  onLatency(us: number): void;
  /** `atUs`: arrival time (wall clock, µs) of the read that carried it. */
  onEvent(atUs: number): void;
  onOpen(c: LoadClient): void;
  /** `reason`: the HTTP status, or the socket error code (ECONNREFUSED...). */
  onFail(c: LoadClient, reason: string): void;
}

// jsonb's text form puts a space after the colon, JSON.stringify does not.
const SENT_KEY = '"sent_us"';

const HEAD_TIMEOUT_MS = 30_000;

export function nowUs(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

export class LoadClient {
  readonly received: number[] = [];
  lastId: string | undefined;
  retryMs = 1000;
  open = false;
  /** Wall-clock ms of the latest 200 response. */
  openedAt = 0;
  opens = 0;
  disconnects = 0;
  failures = 0;
  lastStatus = 0;
  /** Bytes read from every socket of this stream. */
  bytesIn = 0;
  private parser: SseParser | null = null;
  private socket: net.Socket | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  // Taken once per socket read rather than per event: under load one read
  // carries many events, and the clock call is a measurable share of the cost.
  private arrivalUs = 0;

  constructor(
    private readonly target: ClientTarget,
    readonly spec: ClientSpec,
    private readonly hooks: ClientHooks,
    /** Keep reconnecting after the stream ends, like EventSource. */
    private readonly reconnect: boolean,
  ) {
    this.lastId = spec.lastEventId;
  }

  connect(): void {
    if (this.closed) return;
    const s = net.connect({ host: this.target.host, port: this.target.port, localAddress: this.target.localAddress });
    this.socket = s;
    s.setNoDelay(true);
    const parser = new SseParser({
      onHead: (status) => {
        this.lastStatus = status;
        if (status === 200) {
          this.open = true;
          this.opens++;
          this.openedAt = Date.now();
          this.hooks.onOpen(this);
        } else {
          this.failures++;
          this.hooks.onFail(this, String(status));
          s.destroy();
        }
      },
      onEvent: (ev) => this.event(ev),
      onRetry: (ms) => {
        this.retryMs = ms;
      },
      onComment: () => {},
      // A finished response is closed at once, as curl does: the client then
      // holds the connection's TIME_WAIT, not the server's port.
      onEnd: () => s.destroy(),
    });
    // Bounded: a server that accepts but never answers counts as a failure.
    s.setTimeout(HEAD_TIMEOUT_MS, () => {
      s.setTimeout(0);
      if (!this.open) s.destroy();
    });
    s.on('connect', () => {
      let req = `GET ${this.spec.path} HTTP/1.1\r\nHost: ${this.target.host}:${this.target.port}\r\nAccept: text/event-stream\r\n`;
      if (this.lastId !== undefined) req += `Last-Event-ID: ${this.lastId}\r\n`;
      s.write(req + '\r\n');
    });
    this.parser = parser;
    s.on('data', (b: Buffer) => {
      this.bytesIn += b.length;
      this.arrivalUs = nowUs();
      parser.push(b);
    });
    let errorCode = 'closed';
    s.on('error', (e: NodeJS.ErrnoException) => {
      errorCode = e.code ?? 'error';
    });
    s.on('close', () => {
      const wasOpen = this.open;
      this.open = false;
      this.socket = null;
      if (this.closed) return;
      if (wasOpen) this.disconnects++;
      else if (this.lastStatus === 0) {
        // Refused or reset before any response: the server is down or full.
        this.failures++;
        this.hooks.onFail(this, errorCode);
      }
      this.lastStatus = 0;
      if (this.reconnect) this.timer = setTimeout(() => this.connect(), this.retryMs);
    });
  }

  /** What the current connection's parser holds unparsed. */
  parserHeld(): number {
    return this.parser?.held() ?? 0;
  }

  private event(ev: SseEvent): void {
    if (ev.event === 'pgfeed.unavailable') return this.refused(JSON.parse(ev.data).code);
    if (ev.id === null || ev.event.startsWith('pgfeed.')) return;
    this.lastId = ev.id;
    this.received.push(Number(ev.id));
    this.hooks.onEvent(this.arrivalUs);
    // A substring scan instead of JSON.parse: the generator must not be the
    // bottleneck at 100k deliveries/s.
    const k = ev.data.indexOf(SENT_KEY);
    if (k >= 0) {
      let i = k + SENT_KEY.length;
      for (let c = ev.data.charCodeAt(i); c === 58 /* : */ || c === 32; c = ev.data.charCodeAt(++i));
      let v = 0;
      for (let c = ev.data.charCodeAt(i); c >= 48 && c <= 57; c = ev.data.charCodeAt(++i)) v = v * 10 + (c - 48);
      if (v > 0) this.hooks.onLatency(this.arrivalUs - v);
    }
  }

  /**
   * pgfeed answers a stream it cannot serve right now (full, shutting down,
   * no database) with a 200 that says so and ends, since an EventSource
   * gives up on any other status: count it as the refusal it is, by code.
   */
  private refused(code: string): void {
    if (!this.open) return;
    this.open = false;
    this.opens--;
    this.failures++;
    this.hooks.onFail(this, code);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.socket?.destroy();
    this.socket = null;
    this.open = false;
  }
}
