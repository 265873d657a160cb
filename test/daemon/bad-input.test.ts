// Bad input never opens a stream: a 4xx with a JSON error, and the daemon
// keeps serving the healthy streams it already has.
import t, { type Test } from 'tap';
import { testDatabase } from '../harness/db.js';
import { startDaemon, type DaemonProcess } from '../helpers/daemon.js';
import { rawHeader, rawRequest } from '../helpers/raw-http.js';
import { connectSse, getJson, type SseClient } from '../helpers/sse-client.js';
import { emit } from '../helpers/change-log.js';
import { waitUntil } from '../helpers/wait.js';

const db = await testDatabase(t);
const daemon = await startDaemon(t, db.url);
const open: SseClient[] = [];
t.teardown(() => open.forEach((c) => c.close()));

// Opened before any bad input; checked at the end.
const healthy = await connectSse(`${daemon.base}/v1/events?project=healthy&after=now`);
open.push(healthy);
await healthy.waitFor((c) => c.retry !== null, 5_000, 'the retry frame');

interface Rejection {
  status: number;
  contentType: string | null;
  body: any;
  headers: Headers;
}

/** A GET (or other method) that must not stream: the fetch gives up after 5 s rather than hang on one. */
async function request(d: DaemonProcess, path: string, init: RequestInit = {}): Promise<Rejection> {
  const r = await fetch(d.base + path, { ...init, headers: { Accept: 'text/event-stream', ...(init.headers ?? {}) }, signal: AbortSignal.timeout(5_000) });
  const text = await r.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // kept as text; the assertions below say what was expected
  }
  return { status: r.status, contentType: r.headers.get('content-type'), body, headers: r.headers };
}

async function rejected(t: Test, path: string, status: number, code: string, init: RequestInit = {}, d = daemon): Promise<Rejection> {
  const r = await request(d, path, init);
  const what = `${init.method ?? 'GET'} ${path}${init.headers ? ' ' + JSON.stringify(init.headers) : ''}`;
  t.equal(r.status, status, `${what}: ${status}`);
  t.equal(r.contentType, 'application/json', `${what}: a JSON body, no stream`);
  t.equal(r.body?.error?.code, code, `${what}: code ${code}`);
  t.type(r.body?.error?.message, 'string', `${what}: a message`);
  t.ok(r.body?.error?.message?.length > 0, `${what}: the message is not empty`);
  return r;
}

t.test('project: missing, empty, control characters, too long', async (t) => {
  await rejected(t, '/v1/events', 400, 'missing_project');
  await rejected(t, '/v1/events?after=0', 400, 'missing_project');
  await rejected(t, '/v1/events?project=', 400, 'missing_project');
  await rejected(t, '/v1/events?project=a%0d%0ab', 400, 'invalid_project');
  await rejected(t, '/v1/events?project=a%0ab', 400, 'invalid_project');
  await rejected(t, '/v1/events?project=a%00b', 400, 'invalid_project');
  await rejected(t, `/v1/events?project=${'p'.repeat(201)}`, 400, 'invalid_project');
  await rejected(t, '/v1/changes', 400, 'missing_project');
  await rejected(t, '/v1/changes?project=a%00', 400, 'invalid_project');
  // The longest accepted project is 200 characters.
  const ok = await getJson(`${daemon.base}/v1/changes?project=${'p'.repeat(200)}`);
  t.equal(ok.status, 200, 'a 200-character project is accepted');
});

t.test('after: not a number, negative, fractional, out of range, empty', async (t) => {
  for (const after of ['abc', '-1', '1.5', '99999999999999999999', '9007199254740993', '', '1e3', '0x10', '+1', 'NOW']) {
    await rejected(t, `/v1/events?project=x&after=${encodeURIComponent(after)}`, 400, 'invalid_after');
    await rejected(t, `/v1/changes?project=x&after=${encodeURIComponent(after)}`, 400, 'invalid_after');
  }
});

t.test('Last-Event-ID: garbage, negative, injection attempts', async (t) => {
  for (const id of ['abc', '-1', '1.5', '99999999999999999999', '1%0d%0aevent: evil', '1, 2']) {
    await rejected(t, '/v1/events?project=x&after=0', 400, 'invalid_last_event_id', { headers: { 'Last-Event-ID': id } });
  }
  // A bare CR inside the header value cannot be sent by fetch: write it on a socket.
  const res = await rawRequest(daemon.port, 'GET /v1/events?project=x&after=0 HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 1\rretry: 1\r\n\r\n');
  t.not(res.status, 200, 'a CR inside Last-Event-ID never opens a stream');
  // Two cursors are ambiguous: fetch would join them with a comma, so write them on a socket.
  const twice = await rawRequest(daemon.port, 'GET /v1/events?project=x&after=0 HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 1\r\nLast-Event-ID: 2\r\n\r\n');
  t.equal(twice.status, 400, 'a repeated Last-Event-ID header: 400');
  t.match(twice.body, /"code":"duplicate_parameter"/);
  t.notMatch(res.head, /text\/event-stream/i, 'no event stream');
  if (res.status !== 0) t.ok(res.status >= 400 && res.status < 500, `a 4xx (${res.status})`);
});

t.test('cursor: a seq that does not exist, and a seq of another project', async (t) => {
  const r = await rejected(t, '/v1/events?project=x&after=999999999', 400, 'unknown_cursor');
  t.equal(r.body.error.seq, '999999999', 'the error names the cursor');
  await rejected(t, '/v1/events?project=x', 400, 'unknown_cursor', { headers: { 'Last-Event-ID': '999999999' } });
  await rejected(t, '/v1/changes?project=x&after=999999999', 400, 'unknown_cursor');

  const [secret] = await emit(db.pool, 'someone-else');
  await db.pool.query(`UPDATE pgfeed.change_log SET data = '{"secret":"s3cr3t"}' WHERE seq = $1`, [secret]);
  for (const r of [
    await rejected(t, `/v1/events?project=mine&after=${secret}`, 400, 'unknown_cursor'),
    await rejected(t, '/v1/events?project=mine', 400, 'unknown_cursor', { headers: { 'Last-Event-ID': String(secret) } }),
    await rejected(t, `/v1/changes?project=mine&after=${secret}`, 400, 'unknown_cursor'),
  ]) {
    const text = JSON.stringify(r.body);
    t.notMatch(text, /someone-else|s3cr3t|xid/, 'nothing about the other project leaks');
  }
  // The same seq is a fine cursor for its own project.
  const own = await getJson(`${daemon.base}/v1/changes?project=someone-else&after=${secret}`);
  t.equal(own.status, 200);
});

t.test('types: malformed patterns', async (t) => {
  const bad = ['a%20b', 'a+b', '%2C', ',', 'a,', '**', 'a*b', '*a', 'a%0d%0ab', 'a%00', Array.from({ length: 33 }, (_, i) => `t${i}`).join(','), 'x'.repeat(202)];
  for (const types of bad) {
    await rejected(t, `/v1/events?project=x&after=0&types=${types}`, 400, 'invalid_types');
    await rejected(t, `/v1/changes?project=x&types=${types}`, 400, 'invalid_types');
  }
  const ok32 = await getJson(`${daemon.base}/v1/changes?project=x&types=${Array.from({ length: 32 }, (_, i) => `t${i}`).join(',')}`);
  t.equal(ok32.status, 200, '32 patterns are accepted');
});

t.test('parameters: unknown and duplicated', async (t) => {
  await rejected(t, '/v1/events?project=x&foo=1', 400, 'unknown_parameter');
  await rejected(t, '/v1/events?project=x&limit=5', 400, 'unknown_parameter', {});
  await rejected(t, '/v1/events?project=x&Project=y', 400, 'unknown_parameter');
  await rejected(t, '/v1/changes?project=x&bar', 400, 'unknown_parameter');
  await rejected(t, '/v1/events?project=x&project=x', 400, 'duplicate_parameter');
  await rejected(t, '/v1/events?project=x&after=0&after=now', 400, 'duplicate_parameter');
  await rejected(t, '/v1/changes?project=x&limit=1&limit=2', 400, 'duplicate_parameter');
});

t.test('/v1/changes: limit and wait out of range', async (t) => {
  for (const limit of ['0', '513', 'abc', '-1', '1.5', '', '99999']) await rejected(t, `/v1/changes?project=x&limit=${limit}`, 400, 'invalid_limit');
  for (const wait of ['31', '-1', 'x', '1.5', '']) await rejected(t, `/v1/changes?project=x&wait=${wait}`, 400, 'invalid_wait');
  for (const q of ['limit=1', 'limit=512', 'wait=0']) t.equal((await getJson(`${daemon.base}/v1/changes?project=x&${q}`)).status, 200, `${q} is accepted`);
});

t.test('/v1/events: event_names other than on or off', async (t) => {
  // request() sends Accept: text/event-stream, as an EventSource does: bad input is still a JSON 400.
  for (const v of ['', 'OFF', 'false', 'none']) await rejected(t, `/v1/events?project=x&event_names=${v}`, 400, 'invalid_event_names');
  await rejected(t, '/v1/changes?project=x&event_names=off', 400, 'unknown_parameter');
});

t.test('unknown path and method', async (t) => {
  await rejected(t, '/nope', 404, 'not_found');
  await rejected(t, '/v1/events/extra?project=x', 404, 'not_found');
  await rejected(t, '/v2/events?project=x', 404, 'not_found');
  const post = await rejected(t, '/v1/events?project=x', 405, 'method_not_allowed', { method: 'POST', body: 'x' });
  t.equal(post.headers.get('allow'), 'GET', 'Allow: GET');
  await rejected(t, '/v1/changes?project=x', 405, 'method_not_allowed', { method: 'DELETE' });
  await rejected(t, '/nope', 405, 'method_not_allowed', { method: 'PUT', body: 'x' });
});

t.test('a cursor pruned by retention: 410 cursor_expired with the earliest seq', async (t) => {
  const seqs = await emit(db.pool, 'pruned', 'tick', 5);
  const [, , cut] = seqs;
  await db.pool.query('UPDATE pgfeed.settings SET pruned_through = $1', [cut]);
  await db.pool.query('DELETE FROM pgfeed.change_log WHERE seq <= $1', [cut]);
  for (const r of [
    await rejected(t, `/v1/events?project=pruned&after=${seqs[0]}`, 410, 'cursor_expired'),
    await rejected(t, `/v1/events?project=pruned&after=${cut}`, 410, 'cursor_expired'),
    await rejected(t, '/v1/events?project=pruned&after=0', 410, 'cursor_expired', { headers: { 'Last-Event-ID': String(seqs[1]) } }),
    await rejected(t, `/v1/changes?project=pruned&after=${seqs[1]}`, 410, 'cursor_expired'),
  ]) t.equal(r.body.error.earliest, String(seqs[3]), 'earliest is the first retained seq of the project');
  // A retained cursor and the start of history still work.
  const page = await getJson(`${daemon.base}/v1/changes?project=pruned&after=0`);
  t.same(page.body.events.map((e: { seq: number }) => e.seq), seqs.slice(3), 'after=0 starts at the earliest retained event');
  // wait: the tail may not have read the newest event yet; the poll then waits for it.
  const after = await getJson(`${daemon.base}/v1/changes?project=pruned&after=${seqs[3]}&wait=10`);
  t.same(after.body.events.map((e: { seq: number }) => e.seq), seqs.slice(4));
});

t.test('oversized headers: refused, and the daemon still serves', async (t) => {
  for (const size of [16 * 1024, 64 * 1024]) {
    const res = await rawRequest(daemon.port, `GET /v1/events?project=x&after=0 HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(size)}\r\n\r\n`, 3_000);
    t.ok(res.status === 431 || (res.status === 0 && res.ended !== 'timeout'), `a ${size / 1024} KB header: 431 or the connection is closed (status ${res.status}, ${res.ended})`);
    t.notMatch(res.head, /text\/event-stream/i, 'no stream');
    if (res.status === 431) {
      t.match(rawHeader(res, 'content-type'), 'application/json');
      t.match(res.body, /"code":"header_too_large"/, 'the JSON error names header_too_large');
    }
  }
  const many = Array.from({ length: 500 }, (_, i) => `X-H${i}: ${'v'.repeat(100)}\r\n`).join('');
  const res = await rawRequest(daemon.port, `GET /v1/events?project=x&after=0 HTTP/1.1\r\nHost: x\r\n${many}\r\n`, 3_000);
  t.ok(res.status === 431 || (res.status === 0 && res.ended !== 'timeout'), `500 headers: 431 or closed (status ${res.status}, ${res.ended})`);
  t.equal((await getJson(`${daemon.base}/healthz`)).status, 200, 'healthz still answers');
});

// What a hostile-input probe found: each case is refused, or closed at once,
// or (where uWebSockets.js v20.30 itself holds the socket) closed within its
// 10 s header timeout; never held until an idle timeout of its own.
const GET = (target: string, headers = 'Host: x\r\n') => `GET ${target} HTTP/1.1\r\n${headers}\r\n`;
const RESPONSE_LINE = /HTTP\/1\.1 \d{3} /g;

t.test('Last-Event-ID with bytes that are not ASCII: 400 invalid_last_event_id', async (t) => {
  // uWS trims 0x80-0xFF off both ends of a value like spaces: \xff arrives empty, which pgfeed refuses.
  for (const id of ['\xff', '\xff\xff', '\x80', '2\xe93', '\xc3\xa9']) {
    const res = await rawRequest(daemon.port, GET('/v1/events?project=x&after=0', `Host: x\r\nLast-Event-ID: ${id}\r\n`));
    t.equal(res.status, 400, `Last-Event-ID ${JSON.stringify(id)}: 400`);
    t.match(res.body, /"code":"invalid_last_event_id"/);
  }
  const empty = await rawRequest(daemon.port, GET('/v1/events?project=x&after=0', 'Host: x\r\nLast-Event-ID:\r\n'));
  t.equal(empty.status, 400, 'an empty Last-Event-ID is refused, not read as absent');
});

t.test('HEAD: 405 with Allow: GET and no body, so the next response on the connection is intact', async (t) => {
  for (const path of ['/v1/events?project=x', '/v1/changes?project=x', '/healthz', '/nope']) {
    const res = await rawRequest(daemon.port, `HEAD ${path} HTTP/1.1\r\nHost: x\r\n\r\n${GET('/healthz')}`);
    const [first, second] = res.raw.split(/(?=HTTP\/1\.1 )/);
    t.match(first, /^HTTP\/1\.1 405 /, `HEAD ${path}: 405`);
    t.match(first, /\r\nAllow: GET\r\n/i, 'Allow: GET');
    t.match(first, /\r\n\r\n$/, 'nothing after the head');
    t.match(second, /^HTTP\/1\.1 200 [^]*\r\n\r\n\{"status":"ok"\}$/, 'the pipelined GET after it is answered whole');
  }
});

t.test('pipelining: three requests on one connection, three answers in order', async (t) => {
  const res = await rawRequest(daemon.port, GET('/healthz') + GET('/v1/changes?project=x&after=abc') + GET('/nope'));
  t.same(res.raw.match(RESPONSE_LINE), ['HTTP/1.1 200 ', 'HTTP/1.1 400 ', 'HTTP/1.1 404 ']);
});

t.test('Host: repeated or not a host, and a DEL in a header value: 400 invalid_request, connection closed', async (t) => {
  for (const headers of ['Host: x\r\nHost: y\r\n', 'Host: a b c\r\n', 'Host: x/y\r\n', 'Host: x\r\nX-A: a\x7fb\r\n', 'Host: x\r\nLast-Event-ID: 1\x7f\r\n']) {
    const res = await rawRequest(daemon.port, GET('/v1/events?project=x&after=now', headers) + GET('/healthz'), 3_000);
    t.equal(res.status, 400, `${JSON.stringify(headers)}: 400`);
    t.match(res.body, /"code":"invalid_request"/);
    t.match(rawHeader(res, 'Connection'), /close/i, 'Connection: close');
    t.notMatch(res.head, /text\/event-stream/);
  }
  for (const host of ['Host: example.com:8080\r\n', 'Host: [::1]:80\r\n', 'Host: 10.0.0.1\r\n', 'Host:\r\n']) {
    t.equal((await rawRequest(daemon.port, GET('/healthz', host))).status, 200, `${JSON.stringify(host)} is a host`);
  }
});

t.test('request smuggling shapes: closed at once, unanswered, and the bytes after the head never run', async (t) => {
  // The bytes after the head are a request of their own to uWS: if they ran, a 200 would come back.
  const smuggled = GET('/healthz');
  for (const headers of [
    `Host: x\r\nContent-Length: 0\r\nContent-Length: ${smuggled.length}\r\n`,
    `Host: x\r\nContent-Length: ${smuggled.length}\r\nContent-Length: 0\r\n`,
    'Host: x\r\nContent-Length: 1x\r\n',
    'Host: x\r\nTransfer-Encoding: gzip\r\n',
    'Host: x\r\nTransfer-Encoding: chunked\r\n',
  ]) {
    const res = await rawRequest(daemon.port, `GET /v1/changes?project=x HTTP/1.1\r\n${headers}\r\n${smuggled}`, 3_000);
    t.equal(res.raw, '', `${JSON.stringify(headers)}: no answer at all`);
    t.not(res.ended, 'timeout', 'the connection is closed');
    t.ok(res.ms < 1_000, `at once (${res.ms} ms)`);
  }
  const same = await rawRequest(daemon.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n');
  t.equal(same.status, 200, 'the same Content-Length twice is one length (RFC 9112 6.3)');
});

t.test('what uWebSockets.js refuses itself: closed at once, or within its 10 s header timeout', async (t) => {
  const many = (n: number) => 'Host: x\r\n' + Array.from({ length: n - 1 }, (_, i) => `X-H${i}: v\r\n`).join('');
  const cases: Array<[string, string, 'prompt' | 'linger']> = [
    ['unknown method FOO', 'FOO /healthz HTTP/1.1\r\nHost: x\r\n\r\n', 'prompt'],
    ['lowercase get', 'get /healthz HTTP/1.1\r\nHost: x\r\n\r\n', 'prompt'],
    ['an empty header name first', 'GET /healthz HTTP/1.1\r\n: v\r\nHost: x\r\n\r\n', 'prompt'],
    ['HTTP/1.0', 'GET /healthz HTTP/1.0\r\n\r\n', 'linger'],
    ['HTTP/1.0 with Host', 'GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n', 'linger'],
    ['HTTP/1.1 without Host', 'GET /healthz HTTP/1.1\r\n\r\n', 'linger'],
    ['HTTP/2.0', 'GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n', 'linger'],
    ['NUL in the request line', 'GET /healthz\x00 HTTP/1.1\r\nHost: x\r\n\r\n', 'linger'],
    ['a control byte in the request line', 'GET /heal\x01thz HTTP/1.1\r\nHost: x\r\n\r\n', 'linger'],
    ['bare LF line endings', 'GET /healthz HTTP/1.1\nHost: x\n\n', 'linger'],
    ['obs-fold', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n', 'linger'],
    ['absolute-form target', 'GET http://x/healthz HTTP/1.1\r\nHost: x\r\n\r\n', 'linger'],
    ['asterisk-form target', 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n', 'linger'],
    ['49 header lines', `GET /healthz HTTP/1.1\r\n${many(49)}\r\n`, 'linger'],
    ['an underscore in a header name', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX_A: 1\r\n\r\n', 'linger'],
    ['a control byte in a header value', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n', 'linger'],
    ['a half-closed socket with half a request', 'GET /healthz HTTP/1.1\r\nHo', 'prompt'],
  ];
  // All at once: the lingering ones take uWS's timeout (10 s, checked every 4 s), not one after another.
  const results = await Promise.all(cases.map(([, req, kind]) => rawRequest(daemon.port, req, { idleMs: 15_000, halfClose: kind === 'prompt' && req.endsWith('Ho') })));
  cases.forEach(([name, , kind], i) => {
    const r = results[i];
    t.comment(`${name}: ${r.status || 'no answer'}, ${r.ended} after ${r.ms} ms`);
    t.not(r.ended, 'timeout', `${name}: the socket is closed`);
    t.notOk(r.status >= 200 && r.status < 300, `${name}: never served`);
    t.ok(r.ms < (kind === 'prompt' ? 2_000 : 13_000), `${name}: held ${r.ms} ms (bound ${kind === 'prompt' ? '2' : '13'} s)`);
  });
  const long = await rawRequest(daemon.port, GET(`/healthz?${'a'.repeat(10 * 1024)}`));
  t.ok(long.status === 431 || (long.status === 0 && long.ended !== 'timeout'), `a 10 KiB target: 431 (it counts with the headers), or closed if uWS read it in pieces (${long.status}, ${long.ended})`);
  if (long.status === 431) t.match(long.body, /"code":"header_too_large"/);
  const legal = await rawRequest(daemon.port, `GET /healthz HTTP/1.1\r\n${many(48)}\r\n`);
  t.equal(legal.status, 200, '48 header lines are served (uWS holds 49 entries with the request line)');
  const half = await rawRequest(daemon.port, GET('/healthz'), { halfClose: true });
  t.equal(half.status, 200, 'a whole request, then a half-close: answered');
});

t.test('the healthy stream opened first still receives new events', async (t) => {
  const [seq] = await emit(db.pool, 'healthy');
  await healthy.waitFor((c) => c.seqs.includes(seq), 10_000, 'the new event');
  t.same(healthy.seqs, [seq], 'exactly the new event');
  t.notOk(healthy.closed, 'still open');
});

t.test('a flood of streams beyond PGFEED_MAX_STREAMS gets 503 over_capacity with Retry-After, or a retry for an EventSource', async (t) => {
  const small = await startDaemon(t, db.url, { PGFEED_MAX_STREAMS: '50' });
  const [cursor] = await emit(db.pool, 'flood');
  // A seq cursor needs a database lookup before the stream opens: all 60 race it.
  // Not EventSources (no text/event-stream in Accept): those are refused with JSON.
  const clients = await Promise.all(Array.from({ length: 60 }, () => connectSse(`${small.base}/v1/events?project=flood&after=${cursor}`, { Accept: '*/*' })));
  open.push(...clients);
  const ok = clients.filter((c) => c.status === 200);
  const refused = clients.filter((c) => c.status !== 200);
  t.equal(ok.length, 50, '50 streams open');
  t.equal(refused.length, 10, '10 are refused');
  for (const c of refused) {
    await c.waitFor((c) => c.closed, 5_000, 'the error body');
    t.equal(c.status, 503);
    t.equal(c.headers['content-type'], 'application/json');
    t.equal(JSON.parse(c.body).error.code, 'over_capacity');
    t.match(c.headers['retry-after'], /^[1-9]\d*$/, 'Retry-After in seconds');
  }
  // An EventSource fails for good on any status but 200: it is asked to come back instead.
  const es = await connectSse(`${small.base}/v1/events?project=flood&after=${cursor}`);
  open.push(es);
  await es.waitFor((c) => c.closed, 5_000, 'the end of the answer');
  t.equal(es.status, 200, 'an EventSource gets 200');
  t.equal(es.headers['content-type'], 'text/event-stream');
  // A keep-alive request: the daemon closes the connection, so the retry opens a new one.
  const raw = await rawRequest(small.port, `GET /v1/events?project=flood HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nConnection: keep-alive\r\n\r\n`, 5_000);
  t.equal(raw.status, 200);
  t.equal(rawHeader(raw, 'Connection'), 'close', 'Connection: close');
  t.equal(raw.ended, 'closed', 'and the daemon closed the connection');
  t.ok(es.ended, 'the answer ends cleanly');
  t.ok(es.retry !== null && es.retry >= 2000 && es.retry <= 4000, `with a jittered retry: (${es.retry})`);
  t.same(es.events.map((e) => [e.id, e.event, e.json?.code]), [[null, 'pgfeed.unavailable', 'over_capacity']], 'one control event, with no id, naming the code');
  t.same(es.seqs, [], 'and no data');
  const polled = await getJson(`${small.base}/v1/changes?project=flood&wait=1`);
  t.equal(polled.status, 503, 'a long-poll is refused too while full');
  t.equal(polled.body.error.code, 'over_capacity');
  // The open ones still stream.
  const [next] = await emit(db.pool, 'flood');
  await Promise.all(ok.map((c) => c.waitFor((c) => c.seqs.includes(next), 10_000, 'the next event')));
  t.pass('the 50 open streams receive new events');
  ok.forEach((c) => c.close());
  await waitUntil(async () => (await getJson(`${small.base}/readyz`)).body.streams === 0, 10_000, 'the streams to be released');
  const again = await Promise.all(Array.from({ length: 50 }, () => connectSse(`${small.base}/v1/events?project=flood&after=${cursor}`)));
  open.push(...again);
  t.same(again.map((c) => c.status), Array(50).fill(200), 'after closing them, 50 streams open again');
  again.forEach((c) => c.close());
});

