// Secure defaults: an unauthenticated daemon binds to loopback unless told
// otherwise in so many words, and CORS is an allowlist that sends nothing
// to an origin not on it.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { oneLineError, runCli } from '../helpers/cli.js';
import { startDaemon } from '../helpers/daemon.js';
import { rawHeader, rawRequest, type RawResponse } from '../helpers/raw-http.js';
import { connectSse } from '../helpers/sse-client.js';

const db = await testDatabase(t);

t.test('without authentication, an address other than loopback needs PGFEED_ALLOW_UNAUTHENTICATED=true', async (t) => {
  for (const host of ['0.0.0.0', '::', '10.1.2.3']) {
    const r = await runCli(['serve'], { DATABASE_URL: db.url, PGFEED_HOST: host, PGFEED_PORT: '0' });
    const line = oneLineError(t, r, 2, /PGFEED_HOST .* not a loopback address .*PGFEED_ALLOW_UNAUTHENTICATED=true/);
    t.match(line, JSON.stringify(host), `${host}: the line names the address`);
  }
  const bad = await runCli(['serve'], { DATABASE_URL: db.url, PGFEED_HOST: '0.0.0.0', PGFEED_ALLOW_UNAUTHENTICATED: 'yes' });
  oneLineError(t, bad, 2, /PGFEED_ALLOW_UNAUTHENTICATED must be true or false/);

  const open = await startDaemon(t, db.url, { PGFEED_HOST: '0.0.0.0', PGFEED_ALLOW_UNAUTHENTICATED: 'true' });
  const warning = open.logs.find((l) => l.level === 40 && /WITHOUT authentication/.test(String(l.msg)));
  t.ok(warning, 'it starts, and warns at start');
  t.equal(warning?.host, '0.0.0.0', 'naming the address');
  t.equal((await rawRequest(open.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')).status, 200, 'and serves');
  await open.stop();

  const loopback = await startDaemon(t, db.url, { PGFEED_HOST: '127.0.0.1' });
  t.notOk(loopback.logs.some((l) => /WITHOUT authentication/.test(String(l.msg))), 'loopback needs no flag and logs no warning');
  await loopback.stop();
});

t.test('CORS: listed origins may read, with credentials; others get not one CORS header', async (t) => {
  const listed = 'https://app.example.com';
  const d = await startDaemon(t, db.url, { PGFEED_CORS_ORIGINS: `${listed}, http://localhost:3000` });
  const get = (path: string, headers = '') => rawRequest(d.port, `GET ${path} HTTP/1.1\r\nHost: x\r\n${headers}\r\n`);
  const corsOf = (r: RawResponse) => r.head.split('\r\n').filter((l) => /^(access-control-|vary:)/i.test(l));

  for (const path of ['/v1/changes?project=cors', '/v1/changes?project=cors&after=abc', '/healthz', '/nope']) {
    const r = await get(path, `Origin: ${listed}\r\n`);
    t.equal(rawHeader(r, 'Access-Control-Allow-Origin'), listed, `${path} (${r.status}): the origin is allowed`);
    t.equal(rawHeader(r, 'Access-Control-Allow-Credentials'), 'true', 'with credentials');
    t.match(rawHeader(r, 'Vary'), /Origin/, 'Vary: Origin');
    t.match(rawHeader(r, 'Access-Control-Expose-Headers'), /Retry-After/, 'Retry-After is readable');
    t.same(corsOf(await get(path, 'Origin: https://evil.example\r\n')), [], `${path}: an unlisted origin gets none`);
    t.same(corsOf(await get(path, 'Origin: https://app.example.com.evil.example\r\n')), [], `${path}: nor one that merely starts like a listed one`);
    t.same(corsOf(await get(path)), [], `${path}: nor a request without Origin`);
  }
  const stream = await connectSse(`${d.base}/v1/events?project=cors&after=now`, { Origin: 'http://localhost:3000' });
  t.equal(stream.status, 200);
  t.equal(stream.headers['access-control-allow-origin'], 'http://localhost:3000', 'a stream carries the grant too');
  stream.close();

  // A preflight (EventSource's Last-Event-ID, fetch's Authorization), then a pipelined GET: OPTIONS is answered, not swallowed.
  const preflight = (origin: string, method: string, headers: string) =>
    rawRequest(d.port, `OPTIONS /v1/events?project=cors HTTP/1.1\r\nHost: x\r\nOrigin: ${origin}\r\nAccess-Control-Request-Method: ${method}\r\nAccess-Control-Request-Headers: ${headers}\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n`);
  const ok = await preflight(listed, 'GET', 'last-event-id, authorization');
  t.equal(ok.status, 204, 'a preflight: 204');
  t.equal(rawHeader(ok, 'Access-Control-Allow-Origin'), listed);
  t.equal(rawHeader(ok, 'Access-Control-Allow-Credentials'), 'true');
  t.equal(rawHeader(ok, 'Access-Control-Allow-Methods'), 'GET, POST', 'GET, and POST for /v1/tickets');
  t.equal(rawHeader(ok, 'Access-Control-Allow-Headers'), 'last-event-id, authorization');
  t.match(rawHeader(ok, 'Access-Control-Max-Age'), /^\d+$/);
  t.notOk(rawHeader(ok, 'Content-Length'), 'no Content-Length on a 204');
  t.match(ok.body, /^HTTP\/1\.1 200 [^]*\{"status":"ok"\}$/, 'no body, and the pipelined GET is answered whole');
  const ticket = await preflight(listed, 'POST', 'authorization, content-type');
  t.equal(rawHeader(ticket, 'Access-Control-Allow-Origin'), listed, "a page's ticket request (POST with a bearer token and a JSON body) is granted");
  for (const [origin, method, headers, why] of [
    ['https://evil.example', 'GET', 'last-event-id', 'an unlisted origin'],
    [listed, 'DELETE', '', 'a method other than GET'],
    [listed, 'GET', 'x-custom', 'a header not allowed'],
  ]) {
    const r = await preflight(origin, method, headers);
    t.equal(r.status, 204, `${why}: 204`);
    t.same(corsOf(r).filter((l) => !/^vary:/i.test(l)), [], `${why}: no grant`);
  }

  const none = await startDaemon(t, db.url);
  const r = await rawRequest(none.port, `GET /healthz HTTP/1.1\r\nHost: x\r\nOrigin: ${listed}\r\n\r\n`);
  t.same(corsOf(r), [], 'without PGFEED_CORS_ORIGINS, no origin is granted');
  const p = await rawRequest(none.port, `OPTIONS /healthz HTTP/1.1\r\nHost: x\r\nOrigin: ${listed}\r\nAccess-Control-Request-Method: GET\r\n\r\n`);
  t.equal(p.status, 204);
  t.same(corsOf(p), [], 'nor any preflight');
});

t.test('PGFEED_CORS_ORIGINS must hold origins', async (t) => {
  for (const bad of ['https://app.example.com/', 'app.example.com', 'https://a.example/path', '*']) {
    const r = await runCli(['serve'], { DATABASE_URL: db.url, PGFEED_CORS_ORIGINS: bad });
    oneLineError(t, r, 2, /PGFEED_CORS_ORIGINS must be a comma-separated list of origins/);
  }
});
