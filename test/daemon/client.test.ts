// pgfeed/client against real daemons on real sockets: connect() keeps every
// event exactly once and in order through a restart and an over-capacity
// answer, ends for good on bad input, asks for a token before every connect,
// resumes a new connect() from feed.position; poll() pages.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventSource } from 'eventsource';
import t, { type Test } from 'tap';
import { connect, FeedError, poll, type EventSourceConstructor, type FetchLike, type StateChange } from '../../src/client/index.js';
import { testDatabase } from '../harness/db.js';
import { deliveryOrder, emit } from '../helpers/change-log.js';
import { startDaemon } from '../helpers/daemon.js';
import { connectSse, getJson } from '../helpers/sse-client.js';
import { startSwitchProxy } from '../helpers/switch-proxy.js';
import { waitUntil } from '../helpers/wait.js';
import { follow } from '../helpers/feed-follower.js';

const db = await testDatabase(t);
// Short retry hints and backoff: reconnects come within a second.
const FAST = { baseMs: 50, capMs: 300 };

/** A fetch that records each request's headers, and can hold the next request until released. */
function recordingFetch() {
  const requests: { url: string; headers: Record<string, string>; at: number }[] = [];
  let gate: Promise<void> | null = null;
  const fetchFn: FetchLike = async (url, init) => {
    requests.push({ url, headers: { ...(init.headers as Record<string, string>) }, at: performance.now() });
    if (gate) await gate;
    return fetch(url, init);
  };
  return {
    fetch: fetchFn,
    requests,
    /** Holds every request from now on until the returned function is called. */
    hold(): () => void {
      let release!: () => void;
      gate = new Promise((r) => (release = r));
      return () => {
        gate = null;
        release();
      };
    },
  };
}

t.test('a daemon restart behind a proxy: every event once, in order; a fresh token on every connect', async (t) => {
  const env = { PGFEED_RETRY_MS: '100', PGFEED_SHUTDOWN_TIMEOUT_MS: '5000' };
  const [a, b] = await Promise.all([startDaemon(t, db.url, env), startDaemon(t, db.url, env)]);
  const proxy = await startSwitchProxy(t, a.port);
  const rec = recordingFetch();
  let tokens = 0;
  // A backoff far below the server's retry hint (100-200 ms): which of them a reconnect waited for shows.
  const feed = connect({ url: proxy.base, project: 'restart', after: 0, getToken: async () => `token-${++tokens}`, fetch: rec.fetch, backoff: { baseMs: 10, capMs: 50 } });
  t.teardown(() => feed.close());
  const states: StateChange[] = [];
  feed.on('state', (s) => states.push(s));
  const s = follow(feed);
  await emit(db.pool, 'restart', 'tick', 20);
  await s.until(20, 'the first 20 events');
  proxy.target = b.port;
  const stopped = a.stop('SIGTERM');
  await emit(db.pool, 'restart', 'tick', 20);
  await s.until(40, 'all 40 events');
  t.equal(await stopped, 0, 'the first daemon exited 0');
  await emit(db.pool, 'restart', 'tick', 1); // a marker: nothing more than it may arrive
  await s.until(41, 'the marker');
  t.same(s.seqs, await deliveryOrder(db.pool, 'restart'), 'every event exactly once, in (xid, seq) order');
  t.ok(rec.requests.length >= 2, `it reconnected (${rec.requests.length} requests)`);
  t.same(rec.requests.map((r) => r.headers.Authorization), rec.requests.map((_, i) => `Bearer token-${i + 1}`), 'getToken() was called afresh before every connect');
  t.equal(tokens, rec.requests.length, 'and only then');
  t.equal(rec.requests[0].headers['Last-Event-ID'], '0', 'the first connect starts from after');
  t.ok(rec.requests.slice(1).every((r) => r.headers['Last-Event-ID'] !== undefined && r.headers['Last-Event-ID'] !== '0'), 'every reconnect resumes from an event it received');
  t.equal(feed.position, String(s.seqs[s.seqs.length - 1]), 'position is the last event yielded');
  const retries = states.filter((x) => x.state === 'retrying');
  t.ok(retries.length > 0 && states.at(-1)?.state === 'open', `states: ${states.map((x) => x.state).join(' → ')}`);
  t.match(retries[0], { error: undefined }, 'the stopping daemon ended the stream cleanly');
  t.ok(retries[0].delayMs! >= 100 && retries[0].delayMs! <= 200, `and the reconnect waited for the server's retry: hint (${retries[0].delayMs} ms)`);
  feed.close();
  await s.done;
  t.same(s.ended, { error: null }, 'close() ends the iterator without an error');
  t.equal(feed.state, 'closed');
});

t.test('over capacity: the feed is told to wait, waits, then resumes where it was', async (t) => {
  const d = await startDaemon(t, db.url, { PGFEED_MAX_STREAMS: '1', PGFEED_RETRY_MS: '200' });
  const proxy = await startSwitchProxy(t, d.port);
  const rec = recordingFetch();
  const feed = connect({ url: proxy.base, project: 'full', fetch: rec.fetch, backoff: FAST });
  t.teardown(() => feed.close());
  const unavailable: string[] = [];
  feed.on('unavailable', (u) => unavailable.push(u.code));
  const s = follow(feed);
  await emit(db.pool, 'full', 'tick', 10);
  await s.until(10, 'the first 10 events');
  // The reconnect waits until another stream has taken the one place.
  const release = rec.hold();
  proxy.dropAll();
  await waitUntil(async () => (await getJson(`${d.base}/readyz`)).body.streams === 0, 5_000, 'the place to be free');
  const other = await connectSse(`${d.base}/v1/events?project=elsewhere&after=now`);
  t.teardown(() => other.close());
  t.equal(other.status, 200, 'another stream takes the place');
  release();
  await waitUntil(() => unavailable.includes('over_capacity'), 15_000, 'a pgfeed.unavailable answer');
  await emit(db.pool, 'full', 'tick', 10);
  other.close();
  await s.until(20, 'all 20 events');
  await emit(db.pool, 'full', 'tick', 1); // a marker
  await s.until(21, 'the marker');
  t.same(s.seqs, await deliveryOrder(db.pool, 'full'), 'every event exactly once, in (xid, seq) order');
  t.equal(feed.state, 'open', 'and it is open');
});

t.test('a 503 with Retry-After is waited out, then the feed resumes', async (t) => {
  const d = await startDaemon(t, db.url);
  // Something in front of the daemon answers 503 once, as a load balancer with no replica up would.
  const refused: number[] = [];
  const front = http.createServer((req, res) => {
    refused.push(performance.now());
    res.writeHead(503, { 'Content-Type': 'application/json', 'Retry-After': '1', Connection: 'close' });
    res.end(JSON.stringify({ error: { code: 'over_capacity', message: 'The daemon is at its stream limit.' } }));
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => front.close(() => r())));
  const proxy = await startSwitchProxy(t, (front.address() as AddressInfo).port);
  const rec = recordingFetch();
  const feed = connect({ url: proxy.base, project: 'later', fetch: rec.fetch, backoff: { baseMs: 10, capMs: 50 } });
  t.teardown(() => feed.close());
  const states: StateChange[] = [];
  feed.on('state', (s) => states.push(s));
  const unavailable: string[] = [];
  feed.on('unavailable', (u) => unavailable.push(u.code));
  const s = follow(feed);
  await waitUntil(() => refused.length >= 1, 10_000, 'the 503');
  proxy.target = d.port;
  await emit(db.pool, 'later', 'tick', 3);
  await s.until(3, 'the events');
  t.same(s.seqs, await deliveryOrder(db.pool, 'later'));
  t.same(unavailable, refused.map(() => 'over_capacity'), "the 503's code is an 'unavailable' signal");
  t.match(states.find((x) => x.state === 'retrying'), { delayMs: 1_000, error: { code: 'over_capacity', status: 503 } }, 'the wait is the Retry-After');
  t.ok(rec.requests[1].at - rec.requests[0].at >= 950, `the next request came ${Math.round(rec.requests[1].at - rec.requests[0].at)} ms later`);
});

t.test('a frozen daemon: the silent stream is dropped and the feed resumes on another', async (t) => {
  const env = { PGFEED_HEARTBEAT_MS: '1000' };
  const [a, b] = await Promise.all([startDaemon(t, db.url, env), startDaemon(t, db.url, env)]);
  t.teardown(() => a.proc.kill('SIGCONT'));
  const proxy = await startSwitchProxy(t, a.port);
  const feed = connect({ url: proxy.base, project: 'frozen', backoff: FAST, idleTimeoutMs: 2_500 });
  t.teardown(() => feed.close());
  const states: StateChange[] = [];
  feed.on('state', (s) => states.push(s));
  const s = follow(feed);
  await emit(db.pool, 'frozen', 'tick', 5);
  await s.until(5, 'the first 5 events');
  // SIGSTOP: the socket stays open and says nothing, as a peer gone without a FIN would.
  a.proc.kill('SIGSTOP');
  proxy.target = b.port;
  await emit(db.pool, 'frozen', 'tick', 5);
  await s.until(10, 'the 5 written while the first daemon was frozen');
  t.same(s.seqs, await deliveryOrder(db.pool, 'frozen'), 'every event once, in order');
  t.match(states.find((x) => x.state === 'retrying'), { error: { code: 'stalled' } }, 'the silent stream was dropped as stalled');
});

t.test('control events the daemon does not send yet are signals; an unknown one is ignored', async (t) => {
  // A stream as a newer daemon might write it: control events, an unknown one, then a change.
  const change = { seq: 7, xid: '9', project: 'p', type: 'tick', op: null, table: null, data: { i: 0 }, at: '2026-12-01T00:00:00.000Z' };
  const front = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', Connection: 'close' });
    const control = (type: string, more: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...more })}\n\n`;
    res.end(`retry: 60000\n\n${control('pgfeed.degraded', { reason: 'horizon' })}${control('pgfeed.ok', {})}${control('pgfeed.expiring', { in_s: 30 })}` +
      `${control('pgfeed.future', {})}${control('pgfeed.revoked', { reason: 'logged out' })}id: 7\nevent: tick\ndata: ${JSON.stringify(change)}\n\n`);
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => front.close(() => r())));
  const feed = connect({ url: `http://127.0.0.1:${(front.address() as AddressInfo).port}`, project: 'p' });
  const heard: string[] = [];
  for (const name of ['degraded', 'ok', 'expiring', 'revoked', 'reset', 'unavailable'] as const) feed.on(name, (v) => heard.push(`${name}:${JSON.stringify(v)}`));
  for await (const ev of feed) {
    t.same(ev, change, 'the change after them is yielded');
    break;
  }
  t.same(heard, [
    'degraded:{"type":"pgfeed.degraded","reason":"horizon"}',
    'ok:{"type":"pgfeed.ok"}',
    'expiring:{"type":"pgfeed.expiring","in_s":30}',
    'revoked:{"type":"pgfeed.revoked","reason":"logged out"}',
  ], 'each known control event reached its signal, in order; pgfeed.future reached none');
  t.equal(feed.position, '7', 'control events never move the cursor');
});

t.test('bad input ends the feed with an error, once, without a retry', async (t) => {
  const d = await startDaemon(t, db.url);
  const rec = recordingFetch();
  const feed = connect({ url: d.base, project: 'bad', types: ['no spaces allowed'], fetch: rec.fetch, backoff: { baseMs: 0, capMs: 0 } });
  const errors: FeedError[] = [];
  feed.on('error', (e) => errors.push(e));
  const s = follow(feed);
  await s.done;
  const err = s.ended?.error;
  t.ok(err instanceof FeedError, 'the iterator throws a FeedError');
  t.match(err, { code: 'invalid_types', status: 400 }, 'with the server\'s code and status');
  t.same(errors, [err], "and 'error' heard it once");
  t.equal(feed.state, 'closed', 'the feed is closed: nothing can retry');
  t.equal(rec.requests.length, 1, 'one request, not retried');
});

t.test('a getToken() that fails is retried with the cursor kept', async (t) => {
  const d = await startDaemon(t, db.url);
  const rec = recordingFetch();
  let calls = 0;
  const getToken = () => {
    if (++calls === 1) throw new Error('the token service is restarting');
    return 'fresh';
  };
  const feed = connect({ url: d.base, project: 'tokens', getToken, fetch: rec.fetch, backoff: FAST });
  t.teardown(() => feed.close());
  const states: StateChange[] = [];
  feed.on('state', (s) => states.push(s));
  const s = follow(feed);
  await emit(db.pool, 'tokens', 'tick', 2);
  await s.until(2, 'the events');
  t.same(s.seqs, await deliveryOrder(db.pool, 'tokens'));
  t.match(states.find((x) => x.state === 'retrying'), { error: { code: 'token_failed', message: /the token service is restarting/ } }, 'the failure is a retry, with its reason');
  t.same(rec.requests.map((r) => r.headers.Authorization), ['Bearer fresh'], 'no request went out without a token');
});

t.test('a pruned cursor is a reset and the end of the feed', async (t) => {
  const d = await startDaemon(t, db.url);
  const seqs = await emit(db.pool, 'pruned', 'tick', 4);
  await db.pool.query('UPDATE pgfeed.settings SET pruned_through = $1', [seqs[1]]);
  await db.pool.query('DELETE FROM pgfeed.change_log WHERE seq <= $1', [seqs[1]]);
  const feed = connect({ url: d.base, project: 'pruned', after: seqs[0] });
  const resets: unknown[] = [];
  feed.on('reset', (r) => resets.push(r));
  const s = follow(feed);
  await s.done;
  t.match(s.ended?.error, { code: 'cursor_expired', status: 410 });
  t.match(resets, [{ type: 'pgfeed.reset', code: 'cursor_expired', earliest: String(seqs[2]) }], 'the reset says where history begins');
  t.same(s.seqs, []);
});

t.test("a 'reset' handler that restarts goes on from retained history", async (t) => {
  const d = await startDaemon(t, db.url);
  const seqs = await emit(db.pool, 'restarted', 'tick', 4);
  await db.pool.query('UPDATE pgfeed.settings SET pruned_through = $1', [seqs[1]]);
  await db.pool.query('DELETE FROM pgfeed.change_log WHERE seq <= $1', [seqs[1]]);
  const feed = connect({ url: d.base, project: 'restarted', after: seqs[0] });
  t.teardown(() => feed.close());
  const resets: unknown[] = [];
  feed.on('reset', (r) => {
    resets.push(r);
    feed.restart(0);
  });
  const s = follow(feed);
  await s.until(2, 'the retained events');
  t.same(s.seqs, [seqs[2], seqs[3]], 'from the first retained event on');
  t.match(resets, [{ type: 'pgfeed.reset', code: 'cursor_expired', earliest: String(seqs[2]) }]);
  t.throws(() => feed.restart(0), { code: 'invalid_option' }, 'restart() outside a reset handler is refused');
});

t.test('position resumes a new connect(); close() ends a waiting iterator', async (t) => {
  const d = await startDaemon(t, db.url);
  await emit(db.pool, 'resume', 'tick', 10);
  const first = connect({ url: d.base, project: 'resume' });
  let heard = 0;
  first.on('event', () => heard++);
  const got: number[] = [];
  for await (const ev of first) {
    got.push(ev.seq);
    // A slow loop: all 10 have arrived, 5 of them are still queued for it.
    if (got.length === 1) await waitUntil(() => heard === 10, 10_000, 'every event to arrive');
    if (got.length === 6) break; // break closes the feed
  }
  t.equal(first.state, 'closed', 'break closed the feed');
  t.equal(first.position, String(got[5]), 'position is the last event the loop saw, not the last that arrived');
  const second = connect({ url: d.base, project: 'resume', after: first.position! });
  const s = follow(second);
  await s.until(4, 'the other 4');
  t.same([...got, ...s.seqs], await deliveryOrder(db.pool, 'resume'), 'the two feeds together: every event once, in order');
  // Caught up: the iterator waits for the next event, and close() ends the wait.
  await waitUntil(() => second.state === 'open', 5_000, 'the stream to be open');
  second.close();
  await s.done;
  t.same(s.ended, { error: null }, 'the waiting for await ends');
});

t.test('poll() pages through /v1/changes and long-polls', async (t) => {
  const d = await startDaemon(t, db.url);
  await emit(db.pool, 'pages', 'tick', 5);
  await emit(db.pool, 'pages', 'other', 2);
  const all = await deliveryOrder(db.pool, 'pages');
  const seen: number[] = [];
  let after: string = '0';
  for (let pages = 0; ; pages++) {
    if (pages > 10) throw new Error('poll() never reached the end');
    // wait: the tail may not have read the newest events yet.
    const page = await poll({ url: d.base, project: 'pages', after, limit: 2, wait: 5 });
    seen.push(...page.events.map((e) => e.seq));
    if (page.next !== null) after = page.next;
    if (seen.length >= all.length && !page.has_more) break;
  }
  t.same(seen, all, 'pages of 2 hold every event once, in order');
  const ticks = await poll({ url: d.base, project: 'pages', types: ['tick'], limit: 512 });
  t.same(ticks.events.map((e) => e.type), ['tick', 'tick', 'tick', 'tick', 'tick'], 'types filters');
  const waiting = poll({ url: d.base, project: 'pages', after, wait: 10 });
  const [late] = await emit(db.pool, 'pages', 'tick', 1);
  t.same((await waiting).events.map((e) => e.seq), [late], 'a long poll returns the event written while it waited');
  await t.rejects(poll({ url: d.base, project: 'pages', types: ['bad type'] }), { code: 'invalid_types', status: 400 });
  await t.rejects(poll({ url: d.base, project: 'pages', limit: 0 }), { code: 'invalid_option' }, 'a bad limit is refused before any request');
});

/**
 * Gives this process what a browser page has: `online`/`offline` events on
 * the global, navigator.onLine and a document whose visibility changes.
 * Restored at teardown.
 */
function pageGlobals(t: Test) {
  const win = new EventTarget();
  const doc = Object.assign(new EventTarget(), { visibilityState: 'visible' });
  const g = globalThis as Record<string, unknown>;
  const saved = ['addEventListener', 'removeEventListener', 'navigator', 'document'].map((k) => [k, Object.getOwnPropertyDescriptor(g, k)] as const);
  const nav = { onLine: true };
  Object.assign(g, { addEventListener: win.addEventListener.bind(win), removeEventListener: win.removeEventListener.bind(win) });
  Object.defineProperty(g, 'navigator', { value: nav, configurable: true, writable: true });
  Object.defineProperty(g, 'document', { value: doc, configurable: true, writable: true });
  t.teardown(() => {
    for (const [k, d] of saved) {
      if (d) Object.defineProperty(g, k, d);
      else delete g[k];
    }
  });
  return {
    network(online: boolean) {
      nav.onLine = online;
      win.dispatchEvent(new Event(online ? 'online' : 'offline'));
    },
    visibility(state: 'visible' | 'hidden') {
      doc.visibilityState = state;
      doc.dispatchEvent(new Event('visibilitychange'));
    },
  };
}

t.test('offline drops the stream and waits, online resumes at once; every event once', async (t) => {
  const d = await startDaemon(t, db.url);
  const page = pageGlobals(t);
  // A backoff of a minute: only the online event can explain a quick resume.
  const feed = connect({ url: d.base, project: 'offline', backoff: { baseMs: 60_000, capMs: 60_000 } });
  t.teardown(() => feed.close());
  const states: StateChange[] = [];
  feed.on('state', (s) => states.push(s));
  const s = follow(feed);
  await emit(db.pool, 'offline', 'tick', 3);
  await s.until(3, 'the first events');
  page.network(false);
  await waitUntil(async () => feed.state === 'paused' && (await getJson(`${d.base}/readyz`)).body.streams === 0, 5_000, 'the stream to be dropped');
  t.match(states.at(-1), { state: 'paused', reason: 'offline' });
  await emit(db.pool, 'offline', 'tick', 3);
  page.network(true);
  await s.until(6, 'the events written while offline');
  await emit(db.pool, 'offline', 'tick', 1); // a marker
  await s.until(7, 'the marker');
  t.same(s.seqs, await deliveryOrder(db.pool, 'offline'), 'every event once, in order');
  t.notOk(states.some((x) => x.state === 'retrying'), 'no backoff was waited for');
});

t.test('pauseWhenHidden: a page hidden past the grace closes its stream, shown again it resumes', async (t) => {
  const d = await startDaemon(t, db.url);
  const page = pageGlobals(t);
  const feed = connect({ url: d.base, project: 'hidden', pauseWhenHidden: 300 });
  t.teardown(() => feed.close());
  const s = follow(feed);
  await emit(db.pool, 'hidden', 'tick', 2);
  await s.until(2, 'the first events');
  page.visibility('hidden');
  page.visibility('visible'); // a glance away, shorter than the grace
  page.visibility('hidden');
  await waitUntil(async () => feed.state === 'paused' && (await getJson(`${d.base}/readyz`)).body.streams === 0, 5_000, 'the stream to close while hidden');
  await emit(db.pool, 'hidden', 'tick', 2);
  page.visibility('visible');
  await s.until(4, 'the events written while hidden');
  t.same(s.seqs, await deliveryOrder(db.pool, 'hidden'), 'every event once, in order');
  t.throws(() => connect({ url: d.base, project: 'x', pauseWhenHidden: -1 }), { code: 'invalid_option' });
});

t.test("transport 'eventsource': a daemon restart is resumed with every event once; a 400 ends the feed, asked once", async (t) => {
  const env = { PGFEED_RETRY_MS: '100', PGFEED_SHUTDOWN_TIMEOUT_MS: '5000' };
  const [a, b] = await Promise.all([startDaemon(t, db.url, env), startDaemon(t, db.url, env)]);
  const proxy = await startSwitchProxy(t, a.port);
  const ES = EventSource as unknown as EventSourceConstructor;
  const feed = connect({ url: proxy.base, project: 'es', transport: 'eventsource', EventSource: ES, backoff: FAST });
  t.teardown(() => feed.close());
  const s = follow(feed);
  await emit(db.pool, 'es', 'tick', 10);
  await s.until(10, 'the first events');
  proxy.target = b.port;
  await a.stop('SIGTERM');
  await emit(db.pool, 'es', 'tick', 10);
  await emit(db.pool, 'es', 'tick', 1); // a marker
  await s.until(21, 'the events after the restart and the marker');
  t.same(s.seqs, await deliveryOrder(db.pool, 'es'), 'every event exactly once, in order');
  t.throws(() => connect({ url: proxy.base, project: 'es', transport: 'eventsource', EventSource: ES, token: 'x' }), { code: 'invalid_option' }, 'no token with an EventSource');

  const rec = recordingFetch();
  let opened = 0;
  const Counting = class extends EventSource {
    constructor(url: string | URL, init?: object) {
      super(url, init);
      opened++;
    }
  } as unknown as EventSourceConstructor;
  const bad = connect({ url: b.base, project: 'es', types: 'no spaces', transport: 'eventsource', EventSource: Counting, fetch: rec.fetch, backoff: { baseMs: 0, capMs: 0 } });
  const f = follow(bad);
  await f.done;
  t.match(f.ended?.error, { code: 'invalid_types', status: 400 }, "the refusal's code, learnt by asking once with fetch");
  t.equal(opened, 1, 'one EventSource');
  t.equal(rec.requests.length, 1, 'one fetch: nothing retried');
});

t.test('bad options throw at once', async (t) => {
  t.throws(() => connect({ url: 'not a url', project: 'x' }), { code: 'invalid_option' });
  t.throws(() => connect({ url: 'http://127.0.0.1:1', project: '' }), { code: 'invalid_option' });
  t.throws(() => connect({ url: 'http://127.0.0.1:1', project: 'x', after: 'yesterday' }), { code: 'invalid_option' });
  t.throws(() => connect({ url: 'http://127.0.0.1:1', project: 'x', token: 'a', getToken: () => 'b' }), { code: 'invalid_option' });
  t.throws(() => connect({ url: 'http://127.0.0.1:1', project: 'x', backoff: { baseMs: 100, capMs: 10 } }), { code: 'invalid_option' });
  t.throws(() => connect({ url: 'http://127.0.0.1:1', project: 'x', idleTimeoutMs: -1 }), { code: 'invalid_option' });
});
