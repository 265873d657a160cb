// Per-client limits: each refuses one client address (429 with Retry-After,
// or the retry form for an EventSource) and leaves everyone else served; a
// connection flood and a slowloris stay within their bounds while witness
// streams receive every event.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { emit } from '../helpers/change-log.js';
import { startDaemon } from '../helpers/daemon.js';
import { rawRequest } from '../helpers/raw-http.js';
import { connectSse, getJson, type SseClient } from '../helpers/sse-client.js';
import { waitUntil } from '../helpers/wait.js';

const db = await testDatabase(t);
const open: SseClient[] = [];
t.teardown(() => open.forEach((c) => c.close()));
const from = (ip: string, extra: Record<string, string> = {}) => ({ 'X-Forwarded-For': ip, ...extra });
async function stream(base: string, project: string, headers: Record<string, string>): Promise<SseClient> {
  const c = await connectSse(`${base}/v1/events?project=${project}&after=now`, headers);
  open.push(c);
  return c;
}
/** Witnesses: streams of other clients that must see every event written during the test. */
async function witnesses(base: string, project: string, n: number): Promise<SseClient[]> {
  const ws = await Promise.all(Array.from({ length: n }, (_, i) => stream(base, project, from(`192.0.2.${i + 1}`))));
  await Promise.all(ws.map((w) => w.waitFor((c) => c.retry !== null, 5_000, 'the retry frame')));
  return ws;
}

t.test('PGFEED_MAX_STREAMS_PER_IP: one address refused, others served; the address from the trusted header', async (t) => {
  const d = await startDaemon(t, db.url, { PGFEED_MAX_STREAMS_PER_IP: '3', PGFEED_TRUSTED_PROXY_HEADER: 'X-Forwarded-For' });
  const [witness] = await witnesses(d.base, 'per-ip', 1);
  // The last entry is the address the proxy saw; the ones before it are the client's to write.
  const three = await Promise.all(['10.0.0.1', '203.0.113.9, 10.0.0.1', '10.0.0.1'].map((ip) => stream(d.base, 'per-ip', from(ip, { Accept: '*/*' }))));
  t.same(three.map((c) => c.status), [200, 200, 200], 'three streams of 10.0.0.1 open');
  const fourth = await stream(d.base, 'per-ip', from('198.51.100.7, 10.0.0.1', { Accept: '*/*' }));
  await fourth.waitFor((c) => c.closed, 5_000, 'the refusal');
  t.equal(fourth.status, 429, 'a fourth: 429');
  t.equal(JSON.parse(fourth.body).error.code, 'too_many_streams');
  t.match(fourth.headers['retry-after'], /^[1-5]$/, 'Retry-After 1-5 s');
  const es = await stream(d.base, 'per-ip', from('10.0.0.1'));
  await es.waitFor((c) => c.closed, 5_000, 'the end of the answer');
  t.equal(es.status, 200, 'an EventSource gets 200 ...');
  t.same(es.events.map((e) => [e.event, e.json?.code]), [['pgfeed.unavailable', 'too_many_streams']], '... and is asked to retry');
  const poll = await getJson(`${d.base}/v1/changes?project=per-ip`, from('10.0.0.1'));
  t.equal(poll.status, 429, 'a poll of the same address is refused too');
  const other = await stream(d.base, 'per-ip', from('10.0.0.2'));
  t.equal(other.status, 200, 'another address is served');
  // IPv6 counts by /64: three addresses of one /64 are one client.
  const v6 = await Promise.all(['2001:db8:1:2::1', '2001:db8:1:2::2', '2001:db8:1:2::3', '2001:db8:1:2::4'].map((ip) => stream(d.base, 'per-ip', from(ip, { Accept: '*/*' }))));
  t.same(v6.map((c) => c.status).sort(), [200, 200, 200, 429], 'four addresses of one IPv6 /64: one refused');

  const [seq] = await emit(db.pool, 'per-ip');
  await Promise.all([witness, other, ...three].map((c) => c.waitFor((c) => c.seqs.includes(seq), 10_000, 'the event')));
  t.pass('the witness, the other address and the three streams receive the event');
  three[0].close();
  await waitUntil(async () => (await getJson(`${d.base}/v1/changes?project=per-ip`, from('10.0.0.1'))).status === 200, 10_000, 'the freed place');
  t.pass('a closed stream frees its place');
});

t.test('PGFEED_REQUESTS_PER_SECOND_PER_IP: a burst, then 429 rate_limited with the wait in Retry-After', async (t) => {
  const d = await startDaemon(t, db.url, { PGFEED_REQUESTS_PER_SECOND_PER_IP: '5', PGFEED_TRUSTED_PROXY_HEADER: 'x-real-ip' });
  const burst = [];
  for (let i = 0; i < 6; i++) burst.push(await getJson(`${d.base}/v1/changes?project=rate`, { 'X-Real-IP': '10.9.9.9' }));
  t.same(burst.map((r) => r.status), [200, 200, 200, 200, 200, 429], 'five, then refused');
  t.equal(burst[5].body.error.code, 'rate_limited');
  t.equal(burst[5].headers.get('retry-after'), '1', 'Retry-After: the second until the next token');
  t.equal((await getJson(`${d.base}/v1/changes?project=rate`, { 'X-Real-IP': '10.9.9.8' })).status, 200, 'another address is served');
  t.equal((await getJson(`${d.base}/healthz`, { 'X-Real-IP': '10.9.9.9' })).status, 200, 'health checks are not rate-limited');
  const es = await stream(d.base, 'rate', { 'X-Real-IP': '10.9.9.9' });
  await es.waitFor((c) => c.closed, 5_000, 'the answer');
  t.same(es.events.map((e) => e.json?.code), ['rate_limited'], 'an EventSource is asked to retry');
  // An address the header does not hold is no address: the peer is the client.
  t.equal((await getJson(`${d.base}/v1/changes?project=rate`, { 'X-Real-IP': 'not-an-ip' })).status, 200, 'a junk header falls back to the peer');
});

t.test('a connection flood and a slowloris stay within their limits; witnesses receive every event', async (t) => {
  const d = await startDaemon(t, db.url, { PGFEED_MAX_STREAMS_PER_IP: '20', PGFEED_REQUESTS_PER_SECOND_PER_IP: '50', PGFEED_TRUSTED_PROXY_HEADER: 'X-Forwarded-For' });
  const ws = await witnesses(d.base, 'flood', 5);
  const written: number[] = [];
  let writing = true;
  const writer = (async () => {
    while (writing) {
      written.push(...(await emit(db.pool, 'flood')));
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  // A slowloris: 50 sockets writing a request head a byte every 300 ms; uWS's header timeout (10 s) closes them.
  const loris = Array.from({ length: 50 }, () =>
    rawRequest(d.port, 'GET /v1/events?project=flood HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.6.6.6\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n', { idleMs: 20_000, drip: { bytes: 1, gapMs: 300 } }),
  );
  // A flood: 400 connections of one address at once, each asking for a stream.
  const flood = await Promise.all(Array.from({ length: 400 }, () => connectSse(`${d.base}/v1/events?project=flood&after=now`, from('10.7.7.7', { Accept: '*/*' }))));
  open.push(...flood);
  const served = flood.filter((c) => c.status === 200).length;
  const refused = flood.filter((c) => c.status === 429).length;
  t.equal(served + refused, 400, `every flood request is answered: ${served} streams, ${refused} refused with 429`);
  t.ok(served <= 20, `at most PGFEED_MAX_STREAMS_PER_IP (20) streams (${served})`);
  const during = await getJson(`${d.base}/v1/changes?project=flood`, from('10.8.8.8'));
  t.equal(during.status, 200, 'another client is served during the flood');
  const lorises = await Promise.all(loris);
  const heldMs = Math.max(...lorises.map((r) => r.ms));
  t.comment(`slowloris sockets closed after ${Math.min(...lorises.map((r) => r.ms))}-${heldMs} ms`);
  t.ok(lorises.every((r) => r.ended !== 'timeout' && r.status === 0), 'every slowloris socket is closed unanswered');
  t.ok(heldMs < 13_000, `within uWS's header timeout (${heldMs} ms)`);
  writing = false;
  await writer;
  // The marker: written after everything else, so that waiting for it shows nothing before it is missing.
  const [marker] = await emit(db.pool, 'flood');
  await Promise.all(ws.map((w) => w.waitFor((c) => c.seqs.includes(marker), 15_000, 'the marker')));
  for (const w of ws) t.same(w.seqs, [...written, marker], `a witness received all ${written.length + 1} events, in order`);
});
