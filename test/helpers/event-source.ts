// A standard EventSource (the `eventsource` package, which follows the
// WHATWG spec: any status but 200 closes it for good) that records what it
// got, for tests that must prove a browser-like client keeps going.
import { EventSource } from 'eventsource';

export interface FollowedStream {
  readonly es: EventSource;
  /** Data events' ids, in arrival order. */
  readonly seqs: number[];
  /** For each entry of seqs, the connection (1-based) that delivered it. */
  readonly connOf: number[];
  /** The codes of the pgfeed.unavailable control events received. */
  readonly unavailable: string[];
  /** How many times the connection opened (1 + reconnects that got a stream). */
  readonly opens: number;
  /** The HTTP status that closed it for good, if it closed. */
  readonly closedWith: number | null;
  /** Resolves once pred holds; rejects when the EventSource closes for good or time runs out. */
  waitFor(pred: () => boolean, timeoutMs: number, what: string): Promise<void>;
  close(): void;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

/**
 * Opens an EventSource on url. `types`: the event names to listen for;
 * empty means onmessage (for streams opened with event_names=off).
 */
export function followStream(t: Teardown, url: string, types: readonly string[] = []): FollowedStream {
  const es = new EventSource(url);
  const seqs: number[] = [];
  const connOf: number[] = [];
  const unavailable: string[] = [];
  let opens = 0;
  let closedWith: number | null = null;
  const waiters = new Set<() => void>();
  const notify = () => waiters.forEach((w) => w());
  const onData = (e: MessageEvent) => {
    seqs.push(Number(e.lastEventId));
    connOf.push(opens);
    notify();
  };
  if (types.length === 0) es.onmessage = onData;
  for (const type of types) es.addEventListener(type, onData);
  es.addEventListener('pgfeed.unavailable', (e) => {
    unavailable.push(JSON.parse(e.data).code);
    notify();
  });
  es.onopen = () => opens++;
  es.onerror = (e) => {
    if (es.readyState === EventSource.CLOSED) closedWith = e.code ?? 0;
    notify();
  };
  t.teardown(() => es.close());
  const stream: FollowedStream = {
    es,
    seqs,
    connOf,
    unavailable,
    get opens() {
      return opens;
    },
    get closedWith() {
      return closedWith;
    },
    waitFor(pred, timeoutMs, what) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pred()) done(resolve);
          else if (es.readyState === EventSource.CLOSED) {
            done(() => reject(new Error(`the EventSource closed for good (status ${closedWith}) waiting for ${what}; it has ${seqs.length} events`)));
          }
        };
        const timer = setTimeout(() => done(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${seqs.length} events, readyState ${es.readyState}`))), timeoutMs);
        const done = (fn: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          fn();
        };
        waiters.add(check);
        check();
      });
    },
    close: () => es.close(),
  };
  return stream;
}
