// The nginx configuration of docs/deploy.md, as written there, in front of a
// real daemon: a stream through it gets its frames as they happen, a quiet
// one stays open across heartbeats, and a client resumes with Last-Event-ID
// across a restart of the daemon behind it, losing nothing.
// Needs nginx (Debian's `nginx` package); skipped without it.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { deliveryOrder, emit } from '../helpers/change-log.js';
import { startDaemon } from '../helpers/daemon.js';
import { freeLowPort, freePort } from '../helpers/free-port.js';
import { startProxyProcess } from '../helpers/proxy-process.js';
import { rawHeader, rawRequest } from '../helpers/raw-http.js';
import { connectSse, type SseClient } from '../helpers/sse-client.js';

const deploy = readFileSync(new URL('../../docs/deploy.md', import.meta.url), 'utf8');
const documented = /```nginx\n([^]*?)```/.exec(deploy)?.[1];

t.test('the documented configuration has what SSE needs', async (t) => {
  t.ok(documented, 'docs/deploy.md has an nginx block');
  const conf = documented ?? '';
  for (const d of ['proxy_buffering off;', 'proxy_http_version 1.1;', "proxy_set_header Connection '';", 'keepalive ']) t.ok(conf.includes(d), `it has ${d}`);
  const timeout = /proxy_read_timeout (\d+)s;/.exec(conf);
  t.ok(timeout && Number(timeout[1]) > 30, `proxy_read_timeout (${timeout?.[1]} s) exceeds the default 15 s heartbeat and the longest long-poll (30 s)`);
});

const nginx = spawnSync('nginx', ['-v']).status === 0;

t.test('through nginx', { skip: nginx ? false : 'nginx is not installed (Debian package `nginx`): the proxy configuration is not exercised' }, async (t) => {
  const db = await testDatabase(t);
  // A fixed port, so that the restarted daemon is where the upstream block says.
  const upstreamPort = await freeLowPort();
  const env = { PGFEED_PORT: String(upstreamPort), PGFEED_HEARTBEAT_MS: '1000', PGFEED_TRUSTED_PROXY_HEADER: 'X-Forwarded-For' };
  let daemon = await startDaemon(t, db.url, env);

  const dir = mkdtempSync(join(tmpdir(), 'pgfeed-nginx-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, d));
  const port = await freePort();
  const server = documented!.replace('server 127.0.0.1:8787;', `server 127.0.0.1:${upstreamPort};`).replace('listen 80;', `listen 127.0.0.1:${port};`);
  t.not(server, documented, 'the upstream and listen lines were found');
  // One process, in the foreground, with every path in the temp directory.
  writeFileSync(join(dir, 'nginx.conf'), `daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 256; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${server}
}
`);
  const base = await startProxyProcess(t, {
    name: 'nginx',
    command: 'nginx',
    args: ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')],
    port,
    stopSignal: 'SIGQUIT',
    log: () => readFileSync(join(dir, 'error.log'), 'utf8'),
  });

  const open: SseClient[] = [];
  t.teardown(() => open.forEach((c) => c.close()));
  const sse = async (headers: Record<string, string> = {}) => {
    const c = await connectSse(`${base}/v1/events?project=nginx&after=now`, headers);
    open.push(c);
    return c;
  };

  const first = await sse();
  t.equal(first.status, 200);
  t.equal(first.headers['content-type'], 'text/event-stream');
  await first.waitFor((c) => c.retry !== null, 5000, 'the retry frame');
  await first.waitFor((c) => c.pings >= 3, 10_000, 'three heartbeats');
  t.notOk(first.closed, 'a quiet stream stays open, its heartbeats passed on as they come');
  const before = await emit(db.pool, 'nginx', 'tick', 3);
  await first.waitFor((c) => c.seqs.length === 3, 10_000, 'three events');
  t.same(first.seqs, before, 'events arrive while the stream is open, in order');

  // A restart: the stream ends cleanly, events are written while no daemon
  // runs, and the client comes back through nginx with its Last-Event-ID.
  await daemon.stop();
  await first.waitFor((c) => c.closed, 10_000, 'the stream to end');
  const during = await emit(db.pool, 'nginx', 'tick', 3);
  daemon = await startDaemon(t, db.url, env);
  const again = await sse({ 'Last-Event-ID': first.lastEventId! });
  t.equal(again.status, 200, 'the reconnect reaches the restarted daemon');
  await again.waitFor((c) => c.seqs.length === 3, 10_000, 'the events written during the restart');
  const after = await emit(db.pool, 'nginx', 'tick', 1);
  await again.waitFor((c) => c.seqs.length === 4, 10_000, 'a live event after the resume');
  t.same([...first.seqs, ...again.seqs], await deliveryOrder(db.pool, 'nginx'), 'every event exactly once, in delivery order');
  t.same(again.seqs, [...during, ...after], 'the resume starts right after the last event received');

  // What uWebSockets.js leaves unanswered or lets through, sent to nginx:
  // each gets a prompt answer, from nginx or from pgfeed behind it.
  const many = Array.from({ length: 60 }, (_, i) => `X-H${i}: v\r\n`).join('');
  const cases: Array<[string, string, number]> = [
    ['HTTP/1.0 without Host', 'GET /healthz HTTP/1.0\r\n\r\n', 200],
    ['HTTP/1.0 with Host', 'GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n', 200],
    ['bare LF', 'GET /healthz HTTP/1.1\nHost: x\n\n', 200],
    ['absolute-form', `GET http://127.0.0.1:${port}/healthz HTTP/1.1\r\nHost: x\r\n\r\n`, 200],
    ['60 header lines', `GET /healthz HTTP/1.1\r\nHost: x\r\n${many}\r\n`, 200],
    ['an underscore in a header name', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX_A: 1\r\n\r\n', 200],
    ['Last-Event-ID 2\\xff', 'GET /v1/events?project=nginx HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 2\xff\r\n\r\n', 400],
    ['Last-Event-ID \\xff', 'GET /v1/events?project=nginx HTTP/1.1\r\nHost: x\r\nLast-Event-ID: \xff\r\n\r\n', 400],
    ['unknown method FOO', 'FOO /healthz HTTP/1.1\r\nHost: x\r\n\r\n', 405],
    ['HEAD', 'HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n', 405],
    ['two Content-Length', 'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello', 400],
    ['two Host', 'GET /healthz HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n', 400],
    ['obs-fold', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n', 400],
    ['asterisk-form', 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n', 400],
  ];
  t.test('through nginx, malformed requests get a prompt answer', async (t) => {
    for (const [name, req, status] of cases) {
      const r = await rawRequest(port, req, { idleMs: 5_000, halfClose: false, until: (s) => /\r\n\r\n/.test(s) && (/content-length: 0\r\n/i.test(s) || /\r\n\r\n[^]+/.test(s) || name === 'HEAD') });
      t.equal(r.status, status, `${name}: ${status} (after ${r.ms} ms)`);
      t.ok(r.ms < 2_000, `${name}: answered in ${r.ms} ms`);
    }
    const foo = await rawRequest(port, 'FOO /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 5_000);
    t.equal(rawHeader(foo, 'Allow'), 'GET', 'the 405 has Allow: GET');
  });
});
