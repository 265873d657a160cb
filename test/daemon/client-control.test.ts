// pgfeed/client and the control events a daemon with tokens and retention
// sends (pgfeed.reset, expiring, expired), written by a small real HTTP
// server: a reset is never swallowed, `expiring` switches to a stream with a
// fresh token with no gap and no duplicate, `since` only starts a feed.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { connect, FeedError, type ChangeEvent, type Feed } from '../../src/client/index.js';
import { waitUntil } from '../helpers/wait.js';

/** A change as the daemon writes it; xids rise with seq here, so delivery order is seq order. */
const change = (seq: number): ChangeEvent => ({ seq, xid: String(1000 + seq), project: 'p', type: 'tick', op: null, table: null, data: { seq }, at: '2026-12-01T00:00:00.000Z' });
const frame = (seq: number) => `id: ${seq}\nevent: tick\ndata: ${JSON.stringify(change(seq))}\n\n`;
const control = (type: string, more: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...more })}\n\n`;

interface Request {
  readonly url: URL;
  readonly headers: http.IncomingHttpHeaders;
  readonly res: http.ServerResponse;
  /** Resolves when the client has closed this request's connection. */
  readonly closed: Promise<void>;
  /** Answers 200 with the stream's head: done before the script runs, unless `deferHead` says otherwise. */
  open(): void;
}

/** A server that hands each request to the test, which writes the stream it wants. */
async function scriptedServer(t: Test, onRequest: (r: Request, n: number) => void, deferHead: (n: number) => boolean = () => false) {
  const requests: Request[] = [];
  const server = http.createServer((req, res) => {
    const closed = new Promise<void>((resolve) => res.once('close', () => resolve()));
    const open = () => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
      res.write('retry: 50\n\n');
    };
    const r: Request = { url: new URL(req.url!, 'http://x'), headers: req.headers, res, closed, open };
    requests.push(r);
    if (!deferHead(requests.length)) open();
    onRequest(r, requests.length);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

/** Iterates a feed in the background, recording the seqs and how it ended. */
function follow(feed: Feed) {
  const seqs: number[] = [];
  let ended: { error: unknown } | null = null;
  const done = (async () => {
    try {
      for await (const ev of feed) seqs.push(ev.seq);
      ended = { error: null };
    } catch (error) {
      ended = { error };
    }
  })();
  return { seqs, done, get ended() { return ended; }, until: (n: number, what: string) => waitUntil(() => seqs.length >= n, 10_000, `${what} (have ${seqs.length})`) };
}

t.test('a pgfeed.reset without a restart ends the iterator with a typed error, after what came before it', async (t) => {
  const s = await scriptedServer(t, ({ res }) => res.write(frame(1) + frame(2) + control('pgfeed.reset', { earliest: '9' }) + frame(3)));
  for (const withHandler of [false, true]) {
    const feed = connect({ url: s.base, project: 'p' });
    const resets: unknown[] = [];
    if (withHandler) feed.on('reset', (r) => resets.push(r));
    const f = follow(feed);
    t.teardown(() => feed.close());
    await waitUntil(() => f.ended !== null, 10_000, 'the feed to end');
    t.same(f.seqs, [1, 2], `${withHandler ? 'a handler' : 'no handler'}: the events before the reset are yielded, none after`);
    t.ok(f.ended?.error instanceof FeedError, 'the iterator throws a FeedError');
    t.match(f.ended?.error, { code: 'cursor_expired', detail: { earliest: '9' } }, 'cursor_expired, with where history begins');
    t.same(resets, withHandler ? [{ type: 'pgfeed.reset', earliest: '9' }] : [], "a handler heard it, and did not restart: the feed still ends");
    t.equal(feed.state, 'closed');
  }
  t.equal(s.requests.length, 2, 'one request each: a reset is not reconnected past');
});

t.test('a pgfeed.reset with restart(): the feed goes on from there, the queued events first', async (t) => {
  const s = await scriptedServer(t, ({ res }, n) => res.write(n === 1 ? frame(1) + control('pgfeed.reset', { earliest: '20' }) : frame(20) + frame(21)));
  const feed = connect({ url: s.base, project: 'p', after: 0 });
  t.teardown(() => feed.close());
  feed.on('reset', () => feed.restart(0));
  const f = follow(feed);
  await f.until(3, 'the events after the restart');
  t.same(f.seqs, [1, 20, 21]);
  t.equal(s.requests[1].url.searchParams.get('after'), '0', 'the restart asked for all retained history');
  t.equal(s.requests[1].headers['last-event-id'], undefined, 'not from the pruned cursor');
});

t.test('pgfeed.expiring: a fresh token, a second stream from the position reached, and no gap or duplicate at the switch', async (t) => {
  let tokens = 0;
  const s = await scriptedServer(t, (r, n) => {
    if (n === 1) {
      // The first stream: three events, the warning, then two more while the client opens the second.
      r.res.write(frame(1) + frame(2) + frame(3) + control('pgfeed.expiring', { expires_at: '2026-12-01T00:01:00Z' }));
      setTimeout(() => r.res.write(frame(4) + frame(5)), 20);
      return;
    }
    // The second stream opens only once the first has sent 4 and 5, and repeats them: it is read from its cursor.
    const after = Number(r.headers['last-event-id']);
    setTimeout(() => {
      r.open();
      let out = '';
      for (let seq = after + 1; seq <= 8; seq++) out += frame(seq);
      r.res.write(out);
    }, 300);
  }, (n) => n === 2);
  const feed = connect({ url: s.base, project: 'p', after: 0, getToken: () => `token-${++tokens}` });
  t.teardown(() => feed.close());
  const expiring: unknown[] = [];
  feed.on('expiring', (e) => expiring.push(e));
  const f = follow(feed);
  await f.until(8, 'all 8 events');
  await s.requests[0].closed;
  t.same(f.seqs, [1, 2, 3, 4, 5, 6, 7, 8], 'each event once, in order, across the switch');
  t.same(expiring, [{ type: 'pgfeed.expiring', expires_at: '2026-12-01T00:01:00Z' }], "'expiring' heard it");
  t.equal(s.requests.length, 2, 'one new stream');
  t.same(s.requests.map((r) => r.headers.authorization), ['Bearer token-1', 'Bearer token-2'], 'the second with a fresh token');
  t.equal(s.requests[1].headers['last-event-id'], '3', 'opened from the last event received when the warning came, so it repeated 4 and 5');
  t.equal(feed.state, 'open', 'and the feed stays open, on the second stream');
});

t.test('pgfeed.expired: the stream ends and the feed reconnects at once with a fresh token', async (t) => {
  let tokens = 0;
  const s = await scriptedServer(t, ({ res }, n) => {
    if (n === 1) res.end(frame(1) + control('pgfeed.expired', { expired_at: '2026-12-01T00:01:00Z' }));
    else res.write(frame(2));
  });
  // A retry: hint of 50 ms and a backoff far longer: the reconnect must wait for neither.
  const feed = connect({ url: s.base, project: 'p', getToken: () => `token-${++tokens}`, backoff: { baseMs: 60_000, capMs: 60_000 } });
  t.teardown(() => feed.close());
  const delays: number[] = [];
  feed.on('state', (st) => st.state === 'retrying' && delays.push(st.delayMs!));
  const f = follow(feed);
  await f.until(2, 'the event after the reconnect');
  t.same(f.seqs, [1, 2]);
  t.same(delays, [0], 'it reconnected without waiting');
  t.same(s.requests.map((r) => [r.headers.authorization, r.headers['last-event-id']]), [['Bearer token-1', undefined], ['Bearer token-2', '1']]);
});

t.test('since= starts the feed; after the first event the cursor resumes it', async (t) => {
  const s = await scriptedServer(t, ({ res }, n) => (n === 1 ? res.end(frame(5)) : res.write(frame(6))));
  const feed = connect({ url: s.base, project: 'p', since: '2026-12-01T09:00:00Z', backoff: { baseMs: 10, capMs: 20 } });
  t.teardown(() => feed.close());
  const f = follow(feed);
  await f.until(2, 'both events');
  t.equal(s.requests[0].url.searchParams.get('since'), '2026-12-01T09:00:00Z', 'the first request asks from the time');
  t.equal(s.requests[0].url.searchParams.get('after'), null, 'and from no cursor');
  t.equal(s.requests[1].url.searchParams.get('since'), null, 'the reconnect does not ask from the time again');
  t.equal(s.requests[1].headers['last-event-id'], '5', 'but from the last event');
  t.throws(() => connect({ url: s.base, project: 'p', since: 'yesterday' }), { code: 'invalid_option' });
  t.throws(() => connect({ url: s.base, project: 'p', since: new Date('2026-12-01'), after: 3 }), { code: 'invalid_option' });
});
