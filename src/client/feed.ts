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
 * A reset (`pgfeed.reset`, or 410 cursor_expired) ends it too, unless a
 * 'reset' handler calls restart().
 *
 * On `pgfeed.expiring` (with getToken) the feed opens a second stream with a
 * fresh token from the position it has reached, keeps reading the first
 * until the second is open, then switches: the events the second repeats
 * (those at or before the last one received) are dropped by position, so
 * the switch has no gap and no duplicate.
 *
 * The backoff is full jitter (src/backoff.ts): retry n (0 for the first since
 * the last stream that delivered anything) waits a random time in
 * [0, min(capMs, baseMs * factor^n)). With the defaults (500 ms, 30 s, 2) the
 * ceilings are 500 ms, 1 s, 2 s, 4 s, 8 s, 16 s, 30 s, 30 s, …
 */
import { backoffDelay, type Backoff } from '../backoff.js';
import { CONTROL_PREFIX, UNAVAILABLE_CODES, type ChangeEvent, type EventNames, type UnavailableCode } from '../protocol.js';
import { FeedError, responseError, retryableStatus, retryAfterMs } from './feed-error.js';
import { isAfter, positionOf, type EventPosition } from './event-position.js';
import { readEventSource, type EventSourceConstructor } from './event-source.js';
import { baseHeaders, checkAfter, checkRequestOptions, endpoint, type Checked, type RequestOptions } from './options.js';
import { PageLifecycle, type HoldReason } from './page-lifecycle.js';
import { CONTROL_SIGNALS, Signals, type FeedSignals, type FeedState, type ResetSignal, type SignalName, type StateChange } from './signals.js';
import { SseParser, type SseEvent } from './sse-parser.js';
import { poll } from './poll.js';
import { canShareTabs, TabShare, type TabMessage } from './tab-share.js';

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
  /**
   * 'fetch' (the default): headers, a bearer token, liveness and backpressure.
   * 'eventsource': the browser's own EventSource, for a daemon that needs no
   * header (cookies, a ticket in the url); no token or getToken then.
   */
  readonly transport?: 'fetch' | 'eventsource';
  /** The EventSource to use with transport 'eventsource'; globalThis.EventSource by default. */
  readonly EventSource?: EventSourceConstructor;
  /** With transport 'eventsource': send cookies to another origin (EventSource's withCredentials). */
  readonly withCredentials?: boolean;
  /**
   * In a browser, close the stream while the page is hidden and resume when
   * it is shown: true after 10 s hidden, or a number of ms; false (the
   * default) keeps it open.
   */
  readonly pauseWhenHidden?: boolean | number;
  /**
   * In a browser: the tabs of this origin following the same stream share
   * one connection (Web Locks elect the tab that holds it, BroadcastChannel
   * carries its events); each tab still has its own position. Where either
   * API is missing, each tab connects on its own.
   */
  readonly shareAcrossTabs?: boolean;
}

/** How long a page is hidden before `pauseWhenHidden: true` closes its stream. */
export const DEFAULT_HIDDEN_PAUSE_MS = 10_000;

/** Twice the daemon's default heartbeat interval (PGFEED_HEARTBEAT_MS, 15 s). */
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;

export const DEFAULT_BACKOFF: Required<BackoffOptions> = { baseMs: 500, capMs: 30_000, factor: 2 };

/** A stream answering 200, not yet read. */
interface Opened {
  readonly url: string;
  readonly body: ReadableStream<Uint8Array>;
  readonly conn: AbortController;
}

/** Events held for a slow iterator before the feed stops reading (TCP then slows the daemon's side). */
const HIGH_WATER = 1024;

const UNAVAILABLE: ReadonlySet<string> = new Set<UnavailableCode>(UNAVAILABLE_CODES);

/** How one connection ended, and so how long until the next. */
type Ended =
  | { readonly kind: 'clean' }
  /** restart() after a reset, or a pause: connect again at once. */
  | { readonly kind: 'restart' }
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
  private readonly idleTimeoutMs: number;
  private readonly transport: 'fetch' | 'eventsource';
  private readonly EventSource: EventSourceConstructor | null;
  private readonly withCredentials: boolean;
  private readonly hiddenPauseMs: number | null;
  /** Whether a fresh token can be had: only then does `pgfeed.expiring` switch streams. */
  private readonly refreshable: boolean;
  private lifecycle: PageLifecycle | null = null;
  private readonly options: ConnectOptions;
  private tabs: TabShare | null = null;
  /** A follower tab's events from the leader, and whether it is filling a gap from /v1/changes. */
  private readonly fromLeader: ChangeEvent[] = [];
  private readonly prevOf = new WeakMap<ChangeEvent, string | null>();
  private fillingGap = false;
  /** Every request in flight: close() aborts them all. */
  private readonly conns = new Set<AbortController>();
  /** Stops the current EventSource. */
  private stopStream: (() => void) | null = null;
  private started = false;
  private closed = false;
  private _state: FeedState = 'connecting';
  /** Where the feed starts when it has received nothing: `after` (a restart() changes it), and `since`. */
  private startAfter: string | null;
  private since: string | null;
  /** The last event handed to the caller: the cursor to persist. */
  private delivered: string | null = null;
  /** The last event received: what a reconnect resumes after. Ahead of `delivered` by the queue. */
  private received: string | null = null;
  /** Its position: after a stream switch, what the new stream repeats is dropped up to here. */
  private receivedAt: EventPosition | null = null;
  private floor: EventPosition | null = null;
  /** The stream opened on `pgfeed.expiring`, until it replaces the current one. */
  private successor: Promise<Opened | null> | null = null;
  private retryHintMs: number | null = null;
  /** The next reconnect is at once: the token expired, and a fresh one is what it needs. */
  private soon = false;
  private attempt = 0;
  private failure: FeedError | null = null;
  /** Set while 'reset' handlers run, so that restart() can only be called from one. */
  private resetting = false;
  private restartTo: string | null | undefined = undefined;
  // The iterator's side: events received but not yet yielded, and whoever waits for them.
  private iterating = false;
  private readonly queue: ChangeEvent[] = [];
  private wakeIterator: (() => void) | null = null;
  private wakeReader: (() => void) | null = null;
  private sleepTimer: ReturnType<typeof setTimeout> | null = null;
  private wakeSleep: (() => void) | null = null;

  constructor(options: ConnectOptions) {
    this.c = checkRequestOptions(options, 'connect');
    this.options = options;
    if (options.eventNames !== undefined && options.eventNames !== 'on' && options.eventNames !== 'off') {
      throw new FeedError('invalid_option', `eventNames must be 'on' or 'off'; got ${JSON.stringify(options.eventNames)}`);
    }
    this.eventNames = options.eventNames ?? null;
    this.backoff = checkBackoff(options.backoff);
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    if (typeof this.idleTimeoutMs !== 'number' || !(this.idleTimeoutMs >= 0)) {
      throw new FeedError('invalid_option', `idleTimeoutMs must be a number of ms >= 0 (0: off); got ${JSON.stringify(options.idleTimeoutMs)}`);
    }
    this.transport = options.transport ?? 'fetch';
    if (this.transport !== 'fetch' && this.transport !== 'eventsource') {
      throw new FeedError('invalid_option', `transport must be 'fetch' or 'eventsource'; got ${JSON.stringify(options.transport)}`);
    }
    this.EventSource = null;
    if (this.transport === 'eventsource') {
      if (options.token !== undefined || options.getToken !== undefined) {
        throw new FeedError('invalid_option', "an EventSource cannot send an Authorization header: use transport 'fetch' for a token, or cookies or a ticket with 'eventsource'");
      }
      const ES = options.EventSource ?? (globalThis as { EventSource?: EventSourceConstructor }).EventSource;
      if (typeof ES !== 'function') throw new FeedError('invalid_option', "transport 'eventsource' needs an EventSource: run in a browser, or pass options.EventSource");
      this.EventSource = ES;
    }
    this.withCredentials = options.withCredentials === true;
    const hidden = options.pauseWhenHidden ?? false;
    if (typeof hidden !== 'boolean' && !(typeof hidden === 'number' && hidden >= 0)) {
      throw new FeedError('invalid_option', `pauseWhenHidden must be true, false or a number of ms >= 0; got ${JSON.stringify(hidden)}`);
    }
    this.hiddenPauseMs = hidden === true ? DEFAULT_HIDDEN_PAUSE_MS : hidden === false ? null : hidden;
    this.refreshable = options.getToken !== undefined && this.transport === 'fetch';
    this.startAfter = this.c.after;
    this.since = this.c.since;
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

  /**
   * In a 'reset' handler: go on from `after` instead of ending the feed: 0
   * for all retained history (its first event is the reset's `earliest`),
   * 'now', or a seq. The events between the old position and there are gone;
   * the handler has decided that is acceptable.
   */
  restart(after: string | number): void {
    if (!this.resetting) throw new FeedError('invalid_option', "restart() is for a 'reset' handler: feed.on('reset', () => feed.restart(0))");
    this.restartTo = checkAfter(after) ?? '0';
  }

  /** Stops for good: aborts the request, cancels a pending reconnect, and ends the iterator. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const conn of this.conns) conn.abort();
    this.stopStream?.();
    this.lifecycle?.close();
    this.tabs?.close();
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
    this.lifecycle = new PageLifecycle(() => this.lifecycleChanged(), this.hiddenPauseMs);
    if (this.options.shareAcrossTabs === true && canShareTabs()) {
      const c = this.c;
      this.tabs = new TabShare(`${c.base}|${c.project}|${c.types ?? ''}|${this.eventNames ?? ''}|${this.transport}`, (m) => this.heardLeader(m), () => this.run());
      // Until it leads, the tab is served by the leader's stream; a tab that starts behind it reads up first.
      setTimeout(() => {
        if (this.closed || this.tabs?.leading) return;
        this.setState('open');
        if (this.startAfter !== 'now' || this.received !== null) this.fromLeaderGap();
      }, 0);
      return;
    }
    void this.run();
  }

  /** Offline or hidden: drop the stream (its cursor is kept); online or shown: reconnect now. */
  private lifecycleChanged(): void {
    if (this.closed) return;
    if (this.lifecycle?.held()) {
      for (const conn of this.conns) conn.abort();
      this.stopStream?.();
    } else {
      this.attempt = 0;
    }
    this.wakeSleep?.();
  }

  private wake(): void {
    this.wakeIterator?.();
    this.wakeIterator = null;
    this.wakeReader?.();
    this.wakeReader = null;
    this.wakeSleep?.();
  }

  private setState(state: FeedState, detail: Omit<StateChange, 'state'> = {}): void {
    if (this._state === state && state !== 'retrying') return;
    this._state = state;
    this.signals.emit('state', { state, ...detail });
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      let held: HoldReason | null | undefined;
      while ((held = this.lifecycle?.held()) && !this.closed) {
        this.setState('paused', { reason: held });
        await this.sleep(null);
      }
      if (this.closed) return;
      this.setState('connecting');
      const ended = this.transport === 'eventsource' ? await this.connectEventSource() : await this.connectOnce();
      if (this.closed) return;
      if (ended.kind === 'fatal') return this.fail(ended.error);
      if (ended.kind === 'restart' || this.lifecycle?.held()) continue;
      let delayMs: number;
      if (this.soon) delayMs = 0;
      else if (ended.kind === 'clean' && this.retryHintMs !== null) delayMs = this.retryHintMs;
      else if (ended.kind === 'failed' && ended.afterMs !== null) delayMs = ended.afterMs;
      else delayMs = backoffDelay(this.backoff, this.attempt++);
      this.soon = false;
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

  /** Waits `ms`, or (null) until woken: by close(), or by the page coming back. */
  private sleep(ms: number | null): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wakeSleep = resolve;
      if (ms !== null) this.sleepTimer = setTimeout(resolve, ms);
    }).then(() => {
      if (this.sleepTimer !== null) clearTimeout(this.sleepTimer);
      this.sleepTimer = null;
      this.wakeSleep = null;
    });
  }

  /** The stream's URL from where the feed stands: a time only starts it; after the first event, the cursor resumes it. */
  private streamUrl(eventNames: EventNames | null): string {
    const c = this.c;
    return endpoint(c, '/v1/events', {
      project: c.project,
      after: this.received ?? this.startAfter,
      since: this.received === null ? this.since : null,
      types: c.types,
      event_names: eventNames,
    });
  }

  /** Requests a stream from where the feed stands. */
  private async open(): Promise<Opened | { kind: 'refused'; res: Response } | Ended> {
    let headers: Record<string, string>;
    try {
      headers = await baseHeaders(this.c, 'text/event-stream');
    } catch (err) {
      // The token service may be down for a moment: retry, keeping the cursor.
      return { kind: 'failed', error: err as FeedError, afterMs: null };
    }
    if (this.received !== null) headers['Last-Event-ID'] = this.received;
    const url = this.streamUrl(this.eventNames);
    const conn = new AbortController();
    this.conns.add(conn);
    let res: Response;
    try {
      if (this.closed) conn.abort();
      res = await this.c.fetch(url, { headers, signal: conn.signal });
    } catch (err) {
      this.conns.delete(conn);
      return { kind: 'failed', error: networkError(url, err), afterMs: null };
    }
    if (res.status !== 200) {
      this.conns.delete(conn);
      return { kind: 'refused', res };
    }
    const type = res.headers.get('content-type') ?? '';
    if (!type.includes('text/event-stream') || !res.body) {
      this.conns.delete(conn);
      await res.body?.cancel().catch(() => undefined);
      return { kind: 'fatal', error: new FeedError('not_event_stream', `GET ${url} answered 200 with ${type || 'no content type'}, not text/event-stream: is the url pgfeed's?`, 200) };
    }
    return { url, body: res.body, conn };
  }

  private async connectOnce(): Promise<Ended> {
    const opened = await this.open();
    if (!('body' in opened)) return opened.kind === 'refused' ? this.refused(opened.res) : opened;
    this.setState('open');
    return this.read(opened);
  }

  /** A non-200: retried if the condition is of the moment, else the end of the feed. */
  private async refused(res: Response): Promise<Ended> {
    const error = await responseError(res);
    if (UNAVAILABLE.has(error.code)) this.signals.emit('unavailable', { type: 'pgfeed.unavailable', code: error.code as UnavailableCode, message: error.message });
    if (retryableStatus(res.status)) return { kind: 'failed', error, afterMs: retryAfterMs(res) };
    if (error.code === 'cursor_expired') {
      const earliest = error.detail.earliest;
      return this.reset({ type: 'pgfeed.reset', earliest: earliest === undefined || earliest === null ? null : String(earliest), code: error.code }, error);
    }
    return { kind: 'fatal', error };
  }

  /**
   * The cursor is gone. The 'reset' handlers hear it and may restart() from
   * elsewhere; without one that does, the feed ends with `error`: a reset is
   * never passed over in silence.
   */
  private reset(signal: ResetSignal, error: FeedError): Ended {
    this.resetting = true;
    this.restartTo = undefined;
    try {
      this.signals.emit('reset', signal);
    } finally {
      this.resetting = false;
    }
    const to = this.restartTo;
    this.restartTo = undefined;
    if (to === undefined) return { kind: 'fatal', error };
    this.startAfter = to;
    this.since = null;
    this.received = to === 'now' || to === '0' ? null : to;
    this.receivedAt = null;
    this.floor = null;
    this.attempt = 0;
    return { kind: 'restart' };
  }

  /** Opens the stream that replaces the current one: with a fresh token, from the last event received. */
  private switchStreams(): void {
    if (!this.refreshable || this.successor !== null || this.closed) return;
    this.successor = this.open().then(async (o) => {
      if ('body' in o) return o;
      // Refused or failed: the current stream goes on, and its end meets the same answer in the ordinary way.
      if (o.kind === 'refused') await o.res.body?.cancel().catch(() => undefined);
      return null;
    });
  }

  private async read(first: Opened): Promise<Ended> {
    let cur = first;
    let reader = cur.body.getReader();
    let ended: Ended | null = null;
    let idle: ReturnType<typeof setTimeout> | undefined;
    let stalled = false;
    const alive = () => {
      if (this.idleTimeoutMs === 0) return;
      clearTimeout(idle);
      const conn = cur.conn;
      idle = setTimeout(() => {
        stalled = true;
        conn.abort();
      }, this.idleTimeoutMs);
    };
    // A fresh parser per connection: a frame the last one cut off is dropped, never dispatched.
    const parserFor = () =>
      new SseParser({
        onEvent: (ev) => {
          if (!ended && !this.closed) ended = this.dispatch(ev);
        },
        onRetry: (ms) => (this.retryHintMs = ms),
        onComment: () => (this.attempt = 0),
      });
    let parser = parserFor();
    const finish = (o: Opened) => {
      this.conns.delete(o.conn);
      o.conn.abort();
    };
    /** Replaces the current stream with the successor: what it repeats is dropped up to the last event received. */
    const switchTo = (next: Opened, pending: Promise<unknown> | null) => {
      pending?.catch(() => undefined); // the old stream's read, ended by the abort
      reader.cancel().catch(() => undefined);
      finish(cur);
      cur = next;
      reader = cur.body.getReader();
      parser = parserFor();
      this.floor = this.receivedAt;
      alive();
    };
    alive();
    try {
      for (;;) {
        const pending = reader.read();
        let step: ReadableStreamReadResult<Uint8Array> | null = null;
        let next: Opened | null = null;
        while (step === null && next === null) {
          const successor = this.successor;
          if (successor === null) {
            step = await pending;
            break;
          }
          const won = await Promise.race([pending.then((r) => ({ r })), successor.then((s) => ({ s }))]);
          if ('r' in won) step = won.r;
          else {
            // Open: read it from now on. Failed (null): go on with this one.
            this.successor = null;
            next = won.s;
          }
        }
        if (next !== null) {
          switchTo(next, pending);
          continue;
        }
        const { done, value } = step!;
        if (done) {
          // This stream ended (its token expired) before the new one opened: wait for that rather than reconnect.
          const successor = this.successor;
          this.successor = null;
          const later = successor ? await successor : null;
          if (later !== null && !this.closed) {
            switchTo(later, null);
            continue;
          }
          break;
        }
        if (this.closed) break;
        alive();
        parser.push(value);
        if (ended) break;
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
      if (this.closed || this.lifecycle?.held()) return { kind: 'clean' };
      if (stalled) return { kind: 'failed', error: new FeedError('stalled', `GET ${cur.url} sent nothing for ${this.idleTimeoutMs} ms, not even a heartbeat`), afterMs: null };
      return { kind: 'failed', error: networkError(cur.url, err), afterMs: null };
    } finally {
      clearTimeout(idle);
      reader.cancel().catch(() => undefined);
      finish(cur);
      // A successor still opening when the feed stops or fails is not needed.
      const orphan = this.successor;
      this.successor = null;
      void orphan?.then((o) => o && finish(o));
    }
    return ended ?? { kind: 'clean' };
  }

  /** One connection through the browser's EventSource. */
  private async connectEventSource(): Promise<Ended> {
    const url = this.streamUrl('off');
    const outcome = await readEventSource<Ended>({
      url,
      EventSource: this.EventSource!,
      withCredentials: this.withCredentials,
      controlNames: Object.keys(CONTROL_SIGNALS),
      dispatch: (ev) => this.dispatch(ev),
      opened: () => this.setState('open'),
      stopWith: (stop) => (this.stopStream = stop),
      broken: { kind: 'failed', error: new FeedError('network', `the EventSource for ${url} lost its connection`), afterMs: null },
      stopped: { kind: 'clean' },
    });
    if (outcome.kind !== 'refused') return outcome;
    // Scripts cannot see why an EventSource was refused: ask once with fetch, with the same cookies.
    const headers: Record<string, string> = { Accept: 'text/event-stream' };
    if (this.received !== null) headers['Last-Event-ID'] = this.received;
    const conn = new AbortController();
    this.conns.add(conn);
    try {
      const res = await this.c.fetch(url, { headers, signal: conn.signal, credentials: this.withCredentials ? 'include' : 'same-origin' });
      if (res.status !== 200) return await this.refused(res);
      await res.body?.cancel().catch(() => undefined);
      return { kind: 'failed', error: new FeedError('http_error', `the EventSource for ${url} was refused, and then answered 200`), afterMs: null };
    } catch (err) {
      return { kind: 'failed', error: networkError(url, err), afterMs: null };
    } finally {
      this.conns.delete(conn);
      conn.abort();
    }
  }

  /** One parsed frame, handed on once: to the queue and the 'event' handlers, or to a signal. A non-null result ends the connection. */
  private dispatch(ev: SseEvent): Ended | null {
    if (ev.id === null || ev.event.startsWith(CONTROL_PREFIX)) {
      if (!ev.event.startsWith(CONTROL_PREFIX)) return null;
      const signal = CONTROL_SIGNALS[ev.event];
      if (signal === undefined) return null; // a control event of a newer daemon
      const data = parseJson(ev.data);
      if (data === undefined || typeof data !== 'object' || data === null) {
        return { kind: 'fatal', error: new FeedError('not_event_stream', `${ev.event} carried data that is not a JSON object: ${ev.data.slice(0, 200)}`) };
      }
      if (signal === 'reset') {
        const r = data as ResetSignal;
        const error = new FeedError('cursor_expired', `events after ${this.received ?? 'the start'} were pruned before this feed read them: restart() from a 'reset' handler, or connect again with after 0 (retained history begins at ${r.earliest ?? 'nothing'})`, null, { earliest: r.earliest ?? null });
        return this.reset(r, error);
      }
      // The daemon's JSON is trusted for its shape, as the change events' is.
      this.signals.emit(signal, data as never);
      this.tabs?.post({ kind: 'signal', name: signal, value: data });
      if (signal === 'expiring') this.switchStreams();
      if (signal === 'expired') this.soon = true;
      return null;
    }
    const change = parseJson(ev.data) as ChangeEvent | undefined;
    if (change === undefined || typeof change !== 'object' || change === null) {
      return { kind: 'fatal', error: new FeedError('not_event_stream', `event ${ev.id} carried data that is not a change: ${ev.data.slice(0, 200)}`) };
    }
    const at = positionOf(change);
    if (this.floor !== null) {
      // The new stream after a switch repeats what the old one already gave: dropped by position.
      if (!isAfter(at, this.floor)) return null;
      this.floor = null;
    }
    this.attempt = 0;
    this.accept(change);
    return null;
  }

  /**
   * An event received, handed on once: to the iterator's queue and the
   * 'event' handlers, and, in the leading tab, to the other tabs. One at or
   * before the last received (by position) is dropped: a tab may hear the
   * same event from the leader and from its own catch-up.
   */
  private accept(change: ChangeEvent): void {
    const at = positionOf(change);
    if (this.receivedAt !== null && !isAfter(at, this.receivedAt)) return;
    const prev = this.received;
    this.received = String(change.seq);
    this.receivedAt = at;
    this.tabs?.post({ kind: 'event', ev: change, prev });
    if (this.iterating) {
      this.queue.push(change);
      this.wakeIterator?.();
      this.wakeIterator = null;
    } else {
      this.delivered = this.received;
    }
    this.signals.emit('event', change);
  }

  /** A follower tab: what the leader posted. */
  private heardLeader(m: TabMessage): void {
    if (this.closed) return;
    if (m.kind === 'signal') return this.signals.emit(m.name, m.value as never);
    this.prevOf.set(m.ev, m.prev);
    this.fromLeader.push(m.ev);
    void this.takeFromLeader();
  }

  /** Reads /v1/changes up to now from this tab's own cursor, then takes what the leader posted meanwhile. */
  private fromLeaderGap(): void {
    if (this.fillingGap) return;
    this.fillingGap = true;
    void this.fillGap().finally(() => {
      this.fillingGap = false;
      void this.takeFromLeader();
    });
  }

  private async takeFromLeader(): Promise<void> {
    if (this.fillingGap) return;
    while (this.fromLeader.length && !this.closed && !this.tabs?.leading) {
      const ev = this.fromLeader[0];
      const prev = this.prevOf.get(ev) ?? null;
      const fresh = this.received === null && this.startAfter === 'now';
      if ((this.receivedAt !== null && !isAfter(positionOf(ev), this.receivedAt)) || prev === this.received || fresh) {
        this.fromLeader.shift();
        this.accept(ev);
        continue;
      }
      // A gap between this tab's cursor and the leader's: read it from /v1/changes, then take the channel again.
      this.fillingGap = true;
      const before = this.received;
      try {
        await this.fillGap();
        // /v1/changes has not reached the leader's event yet: ask again shortly, not in a tight loop.
        if (this.received === before) await this.sleep(100);
      } finally {
        this.fillingGap = false;
      }
    }
  }

  private async fillGap(): Promise<void> {
    const o = this.options;
    for (let attempt = 0; !this.closed; ) {
      try {
        const page = await poll({
          url: o.url, project: o.project, types: o.types, token: o.token, getToken: o.getToken, fetch: o.fetch,
          ...(this.received === null && this.since !== null ? { since: this.since } : { after: this.received ?? this.startAfter ?? '0' }),
        });
        for (const ev of page.events) this.accept(ev);
        attempt = 0;
        if (!page.has_more) return;
      } catch {
        await this.sleep(backoffDelay(this.backoff, attempt++));
      }
    }
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
