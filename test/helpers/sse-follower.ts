// The raw SSE client (sse-client.ts) made to keep going: whenever its
// connection ends, it reconnects to the same URL with Last-Event-ID, as an
// EventSource would, and records every data event across its connections.
import { connectSse, type SseClient } from './sse-client.js';
import { sleep, waitUntil } from './wait.js';

export interface SseFollower {
  /** Data events' ids, in arrival order, across every connection. */
  readonly seqs: number[];
  /** For each entry of seqs, the connection (1-based) that delivered it. */
  readonly connOf: number[];
  /** Connections that got a 200. */
  readonly opens: number;
  waitFor(pred: () => boolean, timeoutMs: number, what: string): Promise<void>;
  close(): void;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Follows url until closed; a connection that fails or is refused is retried after `retryMs`. */
export function followSse(t: Teardown, url: string, retryMs = 100): SseFollower {
  const seqs: number[] = [];
  const connOf: number[] = [];
  let opens = 0;
  let closed = false;
  let current: SseClient | null = null;
  let failure: Error | null = null;
  const loop = async () => {
    while (!closed) {
      const last = seqs.at(-1);
      let c: SseClient;
      try {
        c = await connectSse(url, last === undefined ? {} : { 'Last-Event-ID': String(last) });
      } catch {
        await sleep(retryMs); // refused or reset before a response: the proxy had nowhere to send it
        continue;
      }
      current = c;
      if (closed) break;
      if (c.status !== 200) {
        // A refusal that retrying cannot fix (4xx) ends the follower loudly.
        if (c.status < 500) failure = new Error(`status ${c.status}: ${c.body}`);
        c.close();
        if (failure) return;
        await sleep(retryMs);
        continue;
      }
      const conn = ++opens;
      let taken = 0;
      const take = () => {
        for (; taken < c.seqs.length; taken++) {
          seqs.push(c.seqs[taken]);
          connOf.push(conn);
        }
        return c.closed;
      };
      await c.waitFor(take, 2 ** 31 - 1, 'the connection to end').catch(() => {});
      take();
      await sleep(retryMs);
    }
  };
  const running = loop();
  const follower: SseFollower = {
    seqs,
    connOf,
    get opens() {
      return opens;
    },
    waitFor: (pred, timeoutMs, what) =>
      waitUntil(() => {
        if (failure) throw failure;
        return pred();
      }, timeoutMs, `${what} (${seqs.length} events over ${opens} connections)`, { intervalMs: 20 }),
    close() {
      closed = true;
      current?.close();
    },
  };
  t.teardown(async () => {
    follower.close();
    await running;
  });
  return follower;
}
