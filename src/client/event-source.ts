/**
 * The browser's own EventSource as a feed's transport (`transport:
 * 'eventsource'`), for a page whose cookies or a ticket in the URL are all
 * the daemon needs: it cannot send headers, so no bearer token. Each
 * connection is one EventSource, closed at its first error; the feed then
 * reconnects with its own backoff and cursor, as with fetch, so the
 * EventSource's own reconnect (the same URL, a fixed delay) never runs.
 *
 * What scripts cannot see of an EventSource: its status code, its comments
 * (the heartbeats) and its `retry:` field. A refused EventSource (readyState
 * CLOSED) is therefore asked again once with fetch, to learn whether the
 * refusal is for good (a 4xx with pgfeed's code: the feed ends) or of the
 * moment (retried); and there is no idle timeout and no read backpressure.
 */
import type { SseEvent } from './sse-parser.js';

/** The part of the WHATWG EventSource the feed uses. */
export interface EventSourceLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { readonly data: string; readonly lastEventId: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  addEventListener(type: string, fn: (ev: { readonly data: string }) => void): void;
  close(): void;
}

export type EventSourceConstructor = new (url: string, init?: { withCredentials?: boolean }) => EventSourceLike;

const CLOSED = 2;

/** How the connection ended, as the feed's transports say it. */
export type Outcome<E> = E | { readonly kind: 'refused' };

export interface EventSourceRun<E> {
  readonly url: string;
  readonly EventSource: EventSourceConstructor;
  readonly withCredentials: boolean;
  /** The names of the control events to listen for (an EventSource dispatches named events only to their listeners). */
  readonly controlNames: readonly string[];
  /** One frame; a non-null result ends the connection with it. */
  dispatch(ev: SseEvent): E | null;
  opened(): void;
  /** Registers how to stop this connection from outside (close(), a pause). */
  stopWith(stop: (() => void) | null): void;
  /** The result of an EventSource that broke after opening, or never opened. */
  broken: E;
  stopped: E;
}

/** One EventSource connection, to its end; 'refused' when it was closed by a non-200 answer. */
export function readEventSource<E>(run: EventSourceRun<E>): Promise<Outcome<E>> {
  return new Promise((resolve) => {
    const es = new run.EventSource(run.url, { withCredentials: run.withCredentials });
    let done = false;
    const finish = (e: Outcome<E>) => {
      if (done) return;
      done = true;
      es.close();
      run.stopWith(null);
      resolve(e);
    };
    run.stopWith(() => finish(run.stopped));
    es.onopen = () => run.opened();
    // event_names=off: every change is a 'message'; its id is the MessageEvent's lastEventId.
    es.onmessage = (m) => {
      const r = run.dispatch({ id: m.lastEventId, event: 'message', data: m.data });
      if (r !== null) finish(r);
    };
    for (const name of run.controlNames) {
      // lastEventId is sticky across events, so a control event is told apart by its name, never by the id.
      es.addEventListener(name, (m) => {
        const r = run.dispatch({ id: null, event: name, data: m.data });
        if (r !== null) finish(r);
      });
    }
    es.onerror = () => finish(es.readyState === CLOSED ? { kind: 'refused' } : run.broken);
  });
}
