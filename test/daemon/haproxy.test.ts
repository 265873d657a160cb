// The HAProxy configuration of docs/scaling.md, as written there, in front of
// two real daemons on one database: its /readyz health check passes, a quiet
// stream stays open across heartbeats, and when the replica holding a stream
// is stopped (SIGTERM, as on a deploy) the client's reconnect through HAProxy
// lands on the other replica and resumes exactly after its last event, while
// requests that HAProxy sends to the stopped replica are retried on the other.
// Needs haproxy (Debian's `haproxy` package); skipped without it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { deliveryOrder, emit } from '../helpers/change-log.js';
import { startDaemon, type DaemonProcess } from '../helpers/daemon.js';
import { freePort } from '../helpers/free-port.js';
import { startProxyProcess } from '../helpers/proxy-process.js';
import { connectSse, getJson, type SseClient } from '../helpers/sse-client.js';

const scaling = readFileSync(new URL('../../docs/scaling.md', import.meta.url), 'utf8');
const documented = /```haproxy\n([^]*?)```/.exec(scaling)?.[1];

t.test('the documented configuration has what SSE and draining need', async (t) => {
  t.ok(documented, 'docs/scaling.md has a haproxy block');
  const conf = documented ?? '';
  for (const d of ['http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host', 'option redispatch', 'retry-on conn-failure', 'balance leastconn']) t.ok(conf.includes(d), `it has ${d}`);
  for (const k of ['client', 'server']) {
    const timeout = new RegExp(`timeout ${k} (\\d+)s`).exec(conf);
    t.ok(timeout && Number(timeout[1]) > 30, `timeout ${k} (${timeout?.[1]} s) exceeds the default 15 s heartbeat and the longest long-poll (30 s)`);
  }
});

const haproxy = spawnSync('haproxy', ['-v']).status === 0;

t.test('through haproxy, two replicas', { skip: haproxy ? false : 'haproxy is not installed (Debian package `haproxy`): the load-balancer configuration is not exercised' }, async (t) => {
  const db = await testDatabase(t);
  const env = { PGFEED_HEARTBEAT_MS: '1000', PGFEED_TRUSTED_PROXY_HEADER: 'X-Forwarded-For' };
  const replicas = [await startDaemon(t, db.url, env), await startDaemon(t, db.url, env)];

  const dir = mkdtempSync(join(tmpdir(), 'pgfeed-haproxy-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  let conf = documented!;
  for (const [from, to] of [
    ['server a 127.0.0.1:8787', `server a 127.0.0.1:${replicas[0].port}`],
    ['server b 127.0.0.1:8788', `server b 127.0.0.1:${replicas[1].port}`],
    ['bind :80', `bind 127.0.0.1:${port}`],
  ]) {
    t.ok(conf.includes(from), `the block has "${from}"`);
    conf = conf.replace(from, to);
  }
  writeFileSync(join(dir, 'haproxy.cfg'), `global\n    maxconn 256\n${conf}`);
  // -db: in the foreground, no daemon mode; -W would fork a master.
  const base = await startProxyProcess(t, { name: 'haproxy', command: 'haproxy', args: ['-db', '-f', join(dir, 'haproxy.cfg')], port, stopSignal: 'SIGTERM' });

  const open: SseClient[] = [];
  t.teardown(() => open.forEach((c) => c.close()));
  const sse = async (headers: Record<string, string> = {}) => {
    const c = await connectSse(`${base}/v1/events?project=lb&after=now`, headers);
    open.push(c);
    return c;
  };
  const holding = async (): Promise<DaemonProcess[]> => {
    const running = replicas.filter((r) => r.proc.exitCode === null);
    const counts = await Promise.all(running.map((r) => getJson(`${r.base}/readyz`).then((x) => x.body.streams as number)));
    return running.filter((_, i) => counts[i] > 0);
  };

  const first = await sse();
  t.equal(first.status, 200);
  await first.waitFor((c) => c.pings >= 3, 10_000, 'three heartbeats');
  t.notOk(first.closed, 'a quiet stream stays open through haproxy, its heartbeats passed on');
  const before = await emit(db.pool, 'lb', 'tick', 3);
  await first.waitFor((c) => c.seqs.length === 3, 10_000, 'three events');
  t.same(first.seqs, before, 'events arrive as they are committed');

  const [served] = await holding();
  t.ok(served, 'one replica holds the stream');
  const other = replicas.find((r) => r !== served)!;
  // A deploy: the replica gets SIGTERM, stops listening and ends its streams.
  t.equal(await served.stop(), 0, 'the stopped replica exits cleanly');
  await first.waitFor((c) => c.closed, 10_000, 'the stream to end');
  const during = await emit(db.pool, 'lb', 'tick', 3);

  // At once, before the health check can have noticed: a connection HAProxy
  // tries on the stopped replica is refused and redispatched.
  const again = await sse({ 'Last-Event-ID': first.lastEventId! });
  t.equal(again.status, 200, 'the reconnect is served');
  t.same(await holding(), [other], 'by the replica still running');
  await again.waitFor((c) => c.seqs.length === 3, 10_000, 'the events written while it moved');
  const after = await emit(db.pool, 'lb', 'tick', 1);
  await again.waitFor((c) => c.seqs.length === 4, 10_000, 'a live event after the resume');
  t.same([...first.seqs, ...again.seqs], await deliveryOrder(db.pool, 'lb'), 'every event exactly once, in delivery order');
  t.same(again.seqs, [...during, ...after], 'the resume starts right after the last event received');

  // leastconn now prefers the stopped replica (it holds nothing) until its
  // check fails: every request still gets an answer, from the other one.
  const statuses: Array<number | string> = [];
  for (let i = 0; i < 6; i++) statuses.push(await fetch(`${base}/readyz`).then((r) => r.status, (e: Error) => e.message));
  t.same(statuses, [200, 200, 200, 200, 200, 200], 'requests meant for the stopped replica are retried on the running one');
});
