// pgfeed/client and the control events a daemon with tokens and retention
// sends (pgfeed.reset, expiring, expired, revoked): first each exact frame
// sequence, written by a small real HTTP server (a reset is never swallowed,
// `expiring` switches to a stream with a fresh token with no gap and no
// duplicate, `since` only starts a feed); then the same against the real
// daemon, with writers writing throughout: tokens that expire every few
// seconds, retention passing a paused feed, a revoked subject.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt } from 'jose';
import t, { type Test } from 'tap';
import { connect, FeedError, type ChangeEvent, type Feed, type ResetSignal, type StateChange } from '../../src/client/index.js';
import { testDatabase } from '../harness/db.js';
import { deliveryOrder, emit, emitBulk, pruneToLast, writersOf } from '../helpers/change-log.js';
import { metric, startDaemon } from '../helpers/daemon.js';
import { AUTH_ENV, token } from '../helpers/tokens.js';
import { sleep, waitUntil } from '../helpers/wait.js';
import { follow as followFeed } from '../helpers/feed-follower.js';

const db = await testDatabase(t);

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

/** Iterates a feed in the background; these tests wait at most 10 s for events by default. */
const follow = (feed: Feed) => followFeed(feed, 10_000);

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

/** Writes a marker after everything else and waits for the feed to yield it: then the feed has had all it will get of what came before. */
async function throughMarker(f: ReturnType<typeof follow>, project: string): Promise<number> {
  const [marker] = await emit(db.pool, project, 'marker');
  await waitUntil(() => f.seqs.includes(marker), 30_000, `the marker ${marker}`);
  return marker;
}

/** Writers of `project` that also stop when the test ends, even if it fails first: they would write to a closed pool. */
function writers(t: Test, project: string, n: number): ReturnType<typeof writersOf> {
  const w = writersOf(db.pool, project, n);
  t.teardown(() => w.stop());
  return w;
}

t.test('the daemon: tokens that expire every few seconds are switched on pgfeed.expiring, with writers writing, every event once and in order', async (t) => {
  // 4 s tokens warned 3 s before: a switch about every second, each well before the expiry spread (at most 0.4 s here).
  const daemon = await startDaemon(t, db.url, { ...AUTH_ENV, PGFEED_EXPIRY_WARNING_MS: '3000', PGFEED_RETRY_MS: '100' });
  const issued: string[] = [];
  const feed = connect({
    url: daemon.base, project: 'expiring', after: 0, backoff: { baseMs: 50, capMs: 300 },
    getToken: async () => {
      issued.push(await token({ sub: 'rotating', projects: ['expiring'], expiresInS: 4 }));
      return issued.at(-1)!;
    },
  });
  t.teardown(() => feed.close());
  const expiring: unknown[] = [];
  const states: StateChange[] = [];
  feed.on('expiring', (e) => expiring.push(e));
  feed.on('state', (s) => states.push(s));
  const f = follow(feed);
  const w = writers(t, 'expiring', 3);
  await waitUntil(() => expiring.length >= 3, 30_000, 'three pgfeed.expiring');
  t.ok((await w.stop()) > 0, 'writers wrote across the switches');
  await throughMarker(f, 'expiring');
  t.ok(issued.length >= 3, `a fresh token for each switch (${issued.length} issued)`);
  t.equal(new Set(issued).size, issued.length, 'each one new');
  t.same(f.seqs, await deliveryOrder(db.pool, 'expiring'), `every event once, in delivery order (${f.seqs.length} events)`);
  t.same(states.filter((s) => s.state === 'retrying'), [], 'the switches were not reconnects: no retrying, so the stream was never cut');
  t.match(expiring[0], { type: 'pgfeed.expiring', expires_at: String }, "'expiring' heard the warning");
  t.equal(feed.state, 'open');
});

/** Writes a backlog of big events, opens a feed on it, and stops iterating after the first: the daemon's side of the stream pauses. */
async function pausedFeed(t: Test, project: string, onReset?: (feed: Feed, r: ResetSignal) => void) {
  const daemon = await startDaemon(t, db.url, { PGFEED_RETRY_MS: '100' });
  // As the daemon's retention tests do: far more than the client's queue, undici's buffer and both sockets hold.
  await emitBulk(db.pool, project, 40_000, 2000);
  const before = await deliveryOrder(db.pool, project);
  const feed = connect({ url: daemon.base, project, after: 0, backoff: { baseMs: 50, capMs: 300 } });
  t.teardown(() => feed.close());
  const resets: ResetSignal[] = [];
  if (onReset) feed.on('reset', (r) => (resets.push(r), onReset(feed, r)));
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const seqs: number[] = [];
  let ended: { error: unknown } | null = null;
  const done = (async () => {
    try {
      for await (const ev of feed) {
        seqs.push(ev.seq);
        if (seqs.length === 1) await held;
      }
      ended = { error: null };
    } catch (error) {
      ended = { error };
    }
  })();
  await waitUntil(async () => (await metric(daemon.base, 'pgfeed_subscribers', { state: 'paused' })) === 1, 60_000, 'the stream to pause');
  const w = writers(t, project, 2);
  const removed = await pruneToLast(db.pool, 100);
  t.ok(removed > 39_000, `pruned ${removed} rows under the paused feed`);
  t.ok((await w.stop()) > 0, 'writers wrote while it was pruned');
  release();
  return { daemon, before, seqs, resets, done, get ended() { return ended; } };
}

t.test('the daemon: retention passes a paused feed with no reset handler, and the iterator ends with cursor_expired after a prefix of the order', async (t) => {
  const p = await pausedFeed(t, 'paused-plain');
  await waitUntil(() => p.ended !== null, 60_000, 'the iterator to end');
  const err = p.ended!.error;
  t.ok(err instanceof FeedError, 'it throws a FeedError');
  const first = (await deliveryOrder(db.pool, 'paused-plain'))[0];
  t.match(err, { code: 'cursor_expired', detail: { earliest: String(first) } }, 'cursor_expired, naming the first retained event');
  t.same(p.seqs, p.before.slice(0, p.seqs.length), `what it yielded (${p.seqs.length} events) is a prefix of the delivery order: nothing skipped`);
  t.ok(p.seqs.length < p.before.length, 'and not all of it');
  t.equal(await metric(p.daemon.base, 'pgfeed_streams_reset_total'), 1, 'the daemon reset the stream once');
});

t.test('the daemon: retention passes a paused feed whose reset handler restarts it from retained history', async (t) => {
  const p = await pausedFeed(t, 'paused-restart', (feed) => feed.restart(0));
  await waitUntil(() => p.resets.length === 1, 60_000, 'the reset');
  const [marker] = await emit(db.pool, 'paused-restart', 'marker');
  await waitUntil(() => p.seqs.includes(marker), 30_000, 'the marker after the restart');
  const earliest = Number(p.resets[0].earliest);
  const cut = p.seqs.indexOf(earliest);
  t.ok(cut > 0, `the restart began at the reset's earliest (${earliest}), after what came before`);
  t.same(p.seqs.slice(0, cut), p.before.slice(0, cut), 'before it: a prefix of the old order');
  t.same(p.seqs.slice(cut), await deliveryOrder(db.pool, 'paused-restart'), 'from it: every retained event once, in order, through the marker');
  t.equal(p.ended, null, 'and the feed goes on');
});

/** A subject revoked while its feed streams, with writers writing; getToken decides what the feed reconnects with. */
async function revokedFeed(t: Test, project: string, getToken: (revokedAt: number | null) => Promise<string>) {
  const daemon = await startDaemon(t, db.url, { ...AUTH_ENV, PGFEED_RETRY_MS: '100' });
  let revokedAt: number | null = null;
  const used: string[] = [];
  const feed = connect({
    url: daemon.base, project, after: 0, backoff: { baseMs: 50, capMs: 300 },
    getToken: async () => {
      used.push(await getToken(revokedAt));
      return used.at(-1)!;
    },
  });
  t.teardown(() => feed.close());
  const revoked: unknown[] = [];
  feed.on('revoked', (r) => revoked.push(r));
  const f = follow(feed);
  const w = writers(t, project, 2);
  await f.until(20, 'events before the revocation', 20_000);
  const { rows } = await db.pool.query<{ at: Date }>('SELECT pgfeed.revoke($1, $2) AS at', [project, 'rotated']);
  revokedAt = rows[0].at.getTime();
  await waitUntil(() => revoked.length > 0, 10_000, 'pgfeed.revoked');
  return { feed, f, w, used, revoked, get revokedAt() { return revokedAt!; } };
}

t.test('the daemon: a revoked subject reconnects with a token issued after the revocation and goes on without a gap', async (t) => {
  const r = await revokedFeed(t, 'revoked-fresh', async (revokedAt) => {
    // As an issuer would: a token issued after the revocation, which has
    // whole-second iat: from the second after the revocation's, and only once
    // the clock is there. A timer is due by the event loop's cached time,
    // which lags the clock on a busy loop, so it can fire a few ms early; a
    // token minted then has the second before and is refused.
    if (revokedAt !== null) {
      const next = Math.floor(revokedAt / 1000) * 1000 + 1000;
      while (Date.now() < next) await sleep(next - Date.now());
    }
    return token({ sub: 'revoked-fresh', projects: ['revoked-fresh'] });
  });
  const before = r.f.seqs.length;
  await r.f.until(before + 20, 'events after the reconnect', 20_000);
  t.ok((await r.w.stop()) > 0, 'writers wrote throughout');
  await throughMarker(r.f, 'revoked-fresh');
  t.same(r.revoked, [{ type: 'pgfeed.revoked', reason: 'rotated' }], "'revoked' heard it, with the reason");
  t.equal(r.used.length, 2, 'one reconnect, with a second token');
  t.ok(decodeJwt(r.used[1]).iat! * 1000 >= r.revokedAt, 'issued after the revocation');
  t.same(r.f.seqs, await deliveryOrder(db.pool, 'revoked-fresh'), `every event once, in delivery order (${r.f.seqs.length} events)`);
  t.equal(r.feed.state, 'open');
});

t.test('the daemon: a revoked subject whose getToken keeps the old token ends with token_revoked, not a retry loop', async (t) => {
  let old: string | null = null;
  const r = await revokedFeed(t, 'revoked-stale', async () => (old ??= await token({ sub: 'revoked-stale', projects: ['revoked-stale'] })));
  await waitUntil(() => r.f.ended !== null, 10_000, 'the feed to end');
  t.ok((await r.w.stop()) > 0, 'writers wrote throughout');
  t.ok(r.f.ended!.error instanceof FeedError, 'the iterator throws a FeedError');
  t.match(r.f.ended!.error, { code: 'token_revoked', status: 401 }, "with the daemon's code");
  t.equal(r.used.length, 2, 'after one reconnect: a 401 is not retried');
  t.same(r.f.seqs, (await deliveryOrder(db.pool, 'revoked-stale')).slice(0, r.f.seqs.length), 'what it yielded is a prefix of the order');
  t.equal(r.feed.state, 'closed');
});
