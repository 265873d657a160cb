/**
 * connect(): a stream of one project's changes that keeps itself open. It
 * reads GET /v1/events with fetch (so it can send headers, a fresh bearer
 * token on every connect, in Node and browsers), reconnects on its own, and
 * resumes after the last event it received, so the iterator yields each
 * event once across reconnects and daemon restarts: the server guarantees
 * exactly-once from the cursor, and the client only has to send the right one.
 *
 * When it reconnects:
 * - the stream ended cleanly (a restart, a `pgfeed.unavailable` answer): after
 *   the server's `retry:` hint;
 * - a 429 or 5xx: after its Retry-After, else after the backoff below;
 * - the connection failed or broke: after the backoff below.
 * Any other 4xx (bad input, 401, 403, 410) ends the feed with an 'error'.
 *
 * The backoff is full jitter (src/backoff.ts): retry n (0 for the first since
 * the last stream that delivered anything) waits a random time in
 * [0, min(capMs, baseMs * factor^n)). With the defaults (500 ms, 30 s, 2) the
 * ceilings are 500 ms, 1 s, 2 s, 4 s, 8 s, 16 s, 30 s, 30 s, …
 */
import { backoffDelay, type Backoff } from '../backoff.js';
import { CONTROL_PREFIX, UNAVAILABLE_CODES, type ChangeEvent, type EventNames, type UnavailableCode } from '../protocol.js';
import { FeedError, responseError, retryableStatus, retryAfterMs } from './feed-error.js';
import { baseHeaders, checkRequestOptions, endpoint, type Checked, type RequestOptions } from './options.js';
import { CONTROL_SIGNALS, Signals, type FeedSignals, type FeedState, type SignalName } from './signals.js';
import { SseParser, type SseEvent } from './sse-parser.js';

export interface BackoffOptions {
  readonly baseMs?: number;
  readonly capMs?: number;
  readonly factor?: number;
}

export interface ConnectOptions extends RequestOptions {
  /** `event_names=`: 'on' (the default) or 'off'. The events yielded are the same either way. */
  readonly eventNames?: EventNames;
  readonly backoff?: BackoffOptions;
  /**
   * A stream with no bytes for this long is dead (a peer gone without a FIN,
   * a frozen daemon): the feed drops it and reconnects. Twice the daemon's
   * PGFEED_HEARTBEAT_MS (default 15 s) is right; 0 turns it off.
   */
  readonly idleTimeoutMs?: number;
}

/** Twice the daemon's default heartbeat interval (PGFEED_HEARTBEAT_MS, 15 s). */
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;

export const DEFAULT_BACKOFF: Required<BackoffOptions> = { baseMs: 500, capMs: 30_000, factor: 2 };

/** Events held for a slow iterator before the feed stops reading (TCP then slows the daemon's side). */
const HIGH_WATER = 1024;

const UNAVAILABLE: ReadonlySet<string> = new Set<UnavailableCode>(UNAVAILABLE_CODES);

/** How one connection ended, and so how long until the next. */
type Ended =
  | { readonly kind: 'clean' }
  | { readonly kind: 'failed'; readonly error: FeedError; readonly afterMs: number | null }
  | { readonly kind: 'fatal'; readonly error: FeedError };

export function connect(options: ConnectOptions): Feed {
  return new Feed(options);
}

export class Feed implements AsyncIterable<ChangeEvent> {
  private readonly c: Checked;
  private readonly eventNames: EventNames | null;
  private readonly backoff: Backoff;
  private readonly signals = new Signals();
  /** Aborts the current request: close() and a stalled stream use it. */
  private conn: AbortController | null = null;
  private readonly idleTimeoutMs: number;
  private started = false;
  private closed = false;
  private _state: FeedState = 'connecting';
  /** The last event handed to the caller: the cursor to persist. */
  private delivered: string | null = null;
  /** The last event received: what a reconnect resumes after. Ahead of `delivered` by the queue. */
  private received: string | null = null;
  private retryHintMs: number | null = null;
  private attempt = 0;
  private failure: FeedError | null = null;
  // The iterator's side: events received but not yet yielded, and whoever waits for them.
  private iterating = false;
  private readonly queue: ChangeEvent[] = [];
  private wakeIterator: (() => void) | null = null;
  private wakeReader: (() => void) | null = null;
  private sleepTimer: ReturnType<typeof setTimeout> | null = null;
  private wakeSleep: (() => void) | null = null;

  constructor(options: ConnectOptions) {
    this.c = checkRequestOptions(options, 'connect');
    if (options.eventNames !== undefined && options.eventNames !== 'on' && options.eventNames !== 'off') {
      throw new FeedError('invalid_option', `eventNames must be 'on' or 'off'; got ${JSON.stringify(options.eventNames)}`);
    }
    this.eventNames = options.eventNames ?? null;
    this.backoff = checkBackoff(options.backoff);
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    if (typeof this.idleTimeoutMs !== 'number' || !(this.idleTimeoutMs >= 0)) {
      throw new FeedError('invalid_option', `idleTimeoutMs must be a number of ms >= 0 (0: off); got ${JSON.stringify(options.idleTimeoutMs)}`);
    }
    this.received = this.c.after !== null && this.c.after !== 'now' ? this.c.after : null;
    this.delivered = this.received;
  }

  /**
   * The seq of the last event delivered (yielded, or passed to an 'event'
   * handler when nothing iterates), as a string; null before the first.
   * Persist it and pass it back as `after` to resume.
   */
  get position(): string | null {
    return this.delivered;
  }

  get state(): FeedState {
    return this._state;
  }

  /** Adds a handler. The stream opens with the first `for await` or the first 'event' handler. */
  on<K extends SignalName>(name: K, fn: (value: FeedSignals[K]) => void): this {
    this.signals.on(name, fn);
    if (name === 'event') this.start();
    return this;
  }

  off<K extends SignalName>(name: K, fn: (value: FeedSignals[K]) => void): this {
    this.signals.off(name, fn);
    return this;
  }

  /** Stops for good: aborts the request, cancels a pending reconnect, and ends the iterator. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.conn?.abort();
    this.wake();
    this.setState('closed');
  }

  [Symbol.asyncIterator](): AsyncIterator<ChangeEvent> {
    if (this.iterating) throw new FeedError('invalid_option', 'a feed has one iterator at a time: connect() again for another');
    this.iterating = true;
    this.start();
    const done = (): IteratorResult<ChangeEvent> => {
      this.iterating = false;
      return { done: true, value: undefined };
    };
    return {
      next: async () => {
        for (;;) {
          if (this.closed && !this.failure) return done();
          const ev = this.queue.shift();
          if (ev) {
            this.delivered = String(ev.seq);
            if (this.queue.length < HIGH_WATER / 2) this.wakeReader?.();
            return { done: false, value: ev };
          }
          if (this.failure) {
            this.iterating = false;
            throw this.failure;
          }
          await new Promise<void>((resolve) => (this.wakeIterator = resolve));
        }
      },
      // `break` out of the for await: the caller is done with the feed.
      return: async () => {
        this.close();
        return done();
      },
    };
  }

  private start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    void this.run();
  }

  private wake(): void {
    this.wakeIterator?.();
    this.wakeIterator = null;
    this.wakeReader?.();
    this.wakeReader = null;
    if (this.sleepTimer !== null) clearTimeout(this.sleepTimer);
    this.wakeSleep?.();
  }

  private setState(state: FeedState, detail: { error?: FeedError; delayMs?: number } = {}): void {
    if (this._state === state && state !== 'retrying') return;
    this._state = state;
    this.signals.emit('state', { state, ...detail });
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      this.setState('connecting');
      const ended = await this.connectOnce();
      if (this.closed) return;
      if (ended.kind === 'fatal') return this.fail(ended.error);
      let delayMs: number;
      if (ended.kind === 'clean' && this.retryHintMs !== null) delayMs = this.retryHintMs;
      else if (ended.kind === 'failed' && ended.afterMs !== null) delayMs = ended.afterMs;
      else delayMs = backoffDelay(this.backoff, this.attempt++);
      this.setState('retrying', { ...(ended.kind === 'failed' ? { error: ended.error } : {}), delayMs });
      await this.sleep(delayMs);
    }
  }

  private fail(error: FeedError): void {
    this.failure = error;
    // Never silent: with no one to hear it, it is an uncaught error, as an EventEmitter's 'error' is.
    if (!this.signals.has('error') && !this.iterating) {
      queueMicrotask(() => {
        throw error;
      });
    }
    this.signals.emit('error', error);
    this.close();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wakeSleep = resolve;
      this.sleepTimer = setTimeout(resolve, ms);
    }).then(() => {
      this.sleepTimer = null;
      this.wakeSleep = null;
    });
  }

  private async connectOnce(): Promise<Ended> {
    const c = this.c;
    let headers: Record<string, string>;
    try {
      headers = await baseHeaders(c, 'text/event-stream');
    } catch (err) {
      // The token service may be down for a moment: retry, keeping the cursor.
      return { kind: 'failed', error: err as FeedError, afterMs: null };
    }
    if (this.received !== null) headers['Last-Event-ID'] = this.received;
    const url = endpoint(c, '/v1/events', {
      project: c.project,
      after: this.received ?? c.after,
      types: c.types,
      event_names: this.eventNames,
    });
    let res: Response;
    try {
      res = await c.fetch(url, { headers, signal: (this.conn = new AbortController()).signal });
    } catch (err) {
      return { kind: 'failed', error: networkError(url, err), afterMs: null };
    }
    if (res.status !== 200) return this.refused(res);
    const type = res.headers.get('content-type') ?? '';
    if (!type.includes('text/event-stream') || !res.body) {
      await res.body?.cancel().catch(() => undefined);
      return { kind: 'fatal', error: new FeedError('not_event_stream', `GET ${url} answered 200 with ${type || 'no content type'}, not text/event-stream: is the url pgfeed's?`, 200) };
    }
    this.setState('open');
    return this.read(url, res.body);
  }

  /** A non-200: retried if the condition is of the moment, else the end of the feed. */
  private async refused(res: Response): Promise<Ended> {
    const error = await responseError(res);
    if (UNAVAILABLE.has(error.code)) this.signals.emit('unavailable', { type: 'pgfeed.unavailable', code: error.code as UnavailableCode, message: error.message });
    if (retryableStatus(res.status)) return { kind: 'failed', error, afterMs: retryAfterMs(res) };
    if (error.code === 'cursor_expired') this.signals.emit('reset', { type: 'pgfeed.reset', ...error.detail, code: error.code });
    return { kind: 'fatal', error };
  }

  private async read(url: string, body: ReadableStream<Uint8Array>): Promise<Ended> {
    const reader = body.getReader();
    let fatal: FeedError | null = null;
    let idle: ReturnType<typeof setTimeout> | undefined;
    let stalled = false;
    const conn = this.conn;
    const alive = () => {
      if (this.idleTimeoutMs === 0) return;
      clearTimeout(idle);
      idle = setTimeout(() => {
        stalled = true;
        conn?.abort();
      }, this.idleTimeoutMs);
    };
    alive();
    // A fresh parser per connection: a frame the last one cut off is dropped, never dispatched.
    const parser = new SseParser({
      onEvent: (ev) => {
        if (!fatal && !this.closed) fatal = this.dispatch(ev);
      },
      onRetry: (ms) => (this.retryHintMs = ms),
      onComment: () => (this.attempt = 0),
    });
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done || this.closed) break;
        alive();
        parser.push(value);
        if (fatal) break;
        // A slow iterator: stop reading until it catches up, so memory stays bounded.
        if (this.iterating && this.queue.length >= HIGH_WATER) {
          // The silence while we do not read is ours, not the stream's.
          clearTimeout(idle);
          while (this.iterating && this.queue.length >= HIGH_WATER && !this.closed) {
            await new Promise<void>((resolve) => (this.wakeReader = resolve));
          }
          alive();
        }
      }
    } catch (err) {
      if (this.closed) return { kind: 'clean' };
      if (stalled) return { kind: 'failed', error: new FeedError('stalled', `GET ${url} sent nothing for ${this.idleTimeoutMs} ms, not even a heartbeat`), afterMs: null };
      return { kind: 'failed', error: networkError(url, err), afterMs: null };
    } finally {
      clearTimeout(idle);
      reader.cancel().catch(() => undefined);
    }
    return fatal ? { kind: 'fatal', error: fatal } : { kind: 'clean' };
  }

  /** One parsed frame, handed on once: to the queue and the 'event' handlers, or to a signal. */
  private dispatch(ev: SseEvent): FeedError | null {
    if (ev.id === null) {
      if (!ev.event.startsWith(CONTROL_PREFIX)) return null;
      const signal = CONTROL_SIGNALS[ev.event];
      if (signal === undefined) return null; // a control event of a newer daemon
      const data = parseJson(ev.data);
      if (data === undefined) return new FeedError('not_event_stream', `${ev.event} carried data that is not JSON: ${ev.data.slice(0, 200)}`);
      // The daemon's JSON is trusted for its shape, as the change events' is.
      this.signals.emit(signal, data as never);
      return null;
    }
    const change = parseJson(ev.data) as ChangeEvent | undefined;
    if (change === undefined || typeof change !== 'object' || change === null) {
      return new FeedError('not_event_stream', `event ${ev.id} carried data that is not a change: ${ev.data.slice(0, 200)}`);
    }
    this.received = ev.id;
    this.attempt = 0;
    if (this.iterating) {
      this.queue.push(change);
      this.wakeIterator?.();
      this.wakeIterator = null;
    } else {
      this.delivered = ev.id;
    }
    this.signals.emit('event', change);
    return null;
  }
}

function checkBackoff(b: BackoffOptions | undefined): Backoff {
  const p = { ...DEFAULT_BACKOFF, ...b };
  for (const k of ['baseMs', 'capMs', 'factor'] as const) {
    if (typeof p[k] !== 'number' || !Number.isFinite(p[k]) || p[k] < 0) throw new FeedError('invalid_option', `backoff.${k} must be a finite number >= 0; got ${JSON.stringify(p[k])}`);
  }
  if (p.factor < 1) throw new FeedError('invalid_option', `backoff.factor must be at least 1; got ${p.factor}`);
  if (p.capMs < p.baseMs) throw new FeedError('invalid_option', `backoff.capMs (${p.capMs}) must be at least backoff.baseMs (${p.baseMs})`);
  return p;
}

function networkError(url: string, err: unknown): FeedError {
  const why = err instanceof Error ? (err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message) : String(err);
  return new FeedError('network', `GET ${url} failed: ${why}`, null, {}, { cause: err });
}

function parseJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}
