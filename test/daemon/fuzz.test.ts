// Property-based fuzzing (fast-check) of /v1/events and /v1/changes: random
// query strings, header values and raw bytes. Every answer is a valid
// stream, a valid page, or a well-formed 4xx JSON error whose status is its
// code's; nothing hangs past uWS's header timeout; the daemon never
// crashes; and witness streams opened first receive every event written
// meanwhile. FUZZ_RUNS scales the case counts (default 1).
import http from 'node:http';
import fc from 'fast-check';
import t, { type Test } from 'tap';
import { ERROR_CODES, type ErrorCode } from '../../src/errors.js';
import { STATUS } from '../../src/http/status.js';
import { testDatabase } from '../harness/db.js';
import { emit } from '../helpers/change-log.js';
import { startDaemon } from '../helpers/daemon.js';
import { rawRequest, type RawResponse } from '../helpers/raw-http.js';
import { connectSse, getJson } from '../helpers/sse-client.js';

const scale = Number(process.env.FUZZ_RUNS ?? 1);
const db = await testDatabase(t);
const daemon = await startDaemon(t, db.url);
const [known] = await emit(db.pool, 'fuzz', 'tick', 3);

const witnesses = await Promise.all(Array.from({ length: 3 }, () => connectSse(`${daemon.base}/v1/events?project=fuzz-witness&after=now`)));
t.teardown(() => witnesses.forEach((w) => w.close()));
await Promise.all(witnesses.map((w) => w.waitFor((c) => c.retry !== null, 5_000, 'the retry frame')));
const written: number[] = [];
let writing = true;
const writer = (async () => {
  while (writing) {
    written.push(...(await emit(db.pool, 'fuzz-witness')));
    await new Promise((r) => setTimeout(r, 100));
  }
})();

/** What is wrong with an answer, or null: a stream, a page, or a 4xx JSON error with its code's status. */
function verdict(status: number, contentType: string, body: string, path: string): string | null {
  if (status === 200 && contentType === 'text/event-stream') {
    return path.startsWith('/v1/events') && /^retry: \d+\n\n/.test(body) ? null : `a stream that does not start with retry: ${JSON.stringify(body.slice(0, 80))}`;
  }
  let json: any;
  try {
    json = JSON.parse(body);
  } catch {
    return `not JSON: ${JSON.stringify(body.slice(0, 120))}`;
  }
  if (contentType !== 'application/json') return `content-type ${contentType}`;
  if (status === 200) return path.startsWith('/v1/changes') && Array.isArray(json.events) && typeof json.has_more === 'boolean' ? null : 'a 200 that is not a page';
  const code = json?.error?.code as ErrorCode;
  if (!(code in ERROR_CODES)) return `unregistered code ${code}`;
  if (typeof json.error.message !== 'string' || !json.error.message) return 'no message';
  if (!STATUS[code].startsWith(`${status} `)) return `${status} for ${code}, whose status is ${STATUS[code]}`;
  if (status < 400 || status >= 500) return `status ${status}`;
  return null;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
t.teardown(() => agent.destroy());
/** A GET through node:http; a stream is read to its first frame, then dropped. */
function get(path: string, headers: Record<string, string>): Promise<{ status: number; contentType: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: daemon.port, path, headers, agent, timeout: 10_000 }, (res) => {
      let body = '';
      const stream = res.headers['content-type'] === 'text/event-stream';
      const done = () => resolve({ status: res.statusCode!, contentType: res.headers['content-type'] ?? '', body });
      res.setEncoding('utf8');
      res.on('data', (d) => {
        body += d;
        if (stream && body.includes('\n\n')) {
          req.destroy();
          done();
        }
      });
      res.on('end', done);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer to GET ${path} in 10 s`)));
    req.on('error', (err) => (req.destroyed && (err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
  });
}

const nasty = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', '0', 'now', 'NOW', '-1', '1e3', '0x10', '+1', ' 1', '1 ', '\r\n', '\0', '%', '%zz', '%00', '*', ',', 'a,', '..', String(known)),
  fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }).map(String),
  fc.integer({ min: 0, max: 2 ** 53 }).map(String),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.nat({ max: 600 }).map((n) => 'x'.repeat(n)),
);
const names = fc.oneof(fc.constantFrom('project', 'after', 'types', 'event_names', 'limit', 'wait', 'Project', 'access_token', 'ticket', ''), fc.string({ maxLength: 12 }));
const query = fc.array(fc.tuple(names, nasty, fc.boolean()), { maxLength: 6 }).map((pairs) =>
  // Encoded, or raw where node:http lets it through (printable ASCII): both spellings reach the parser.
  pairs.map(([k, v, raw]) => (raw && /^[!-~]*$/.test(k + v) ? `${k}=${v}` : `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)).join('&'),
);
const endpoint = fc.constantFrom('/v1/events', '/v1/changes');

async function property(t: Test, name: string, runs: number, prop: fc.IAsyncPropertyWithHooks<any>): Promise<void> {
  const result = await fc.check(prop, { numRuns: runs, seed: Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31) });
  t.notOk(result.failed, `${name}: ${result.numRuns} cases${result.failed ? `; seed ${result.seed}, counterexample ${JSON.stringify(result.counterexample)}: ${result.errorInstance}` : ''}`);
  cases += result.numRuns;
}
let cases = 0;

t.test('query strings: repeated, unknown, unicode, huge and over-long values', async (t) => {
  await property(t, 'query strings', 3000 * scale, fc.asyncProperty(endpoint, query, fc.boolean(), async (path, q, eventSource) => {
    const url = `${path}?${q}`;
    const r = await get(url, eventSource ? { Accept: 'text/event-stream' } : {});
    const why = verdict(r.status, r.contentType, r.body, url);
    if (why) throw new Error(`GET ${url}: ${why}`);
  }));
});

t.test('header values: Last-Event-ID, Accept and others, with Latin-1, DEL and tabs', async (t) => {
  const latin1 = fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).map((c) => String.fromCharCode(c)), maxLength: 30 });
  const value = fc.oneof(nasty, latin1, fc.constant('\t1\t'));
  const headerName = fc.constantFrom('Last-Event-ID', 'Accept', 'Host', 'Origin', 'X-Forwarded-For', 'Content-Length', 'Cookie', 'Authorization', 'X-Anything');
  await property(t, 'header values', 1500 * scale, fc.asyncProperty(endpoint, fc.array(fc.tuple(headerName, value), { maxLength: 4 }), async (path, headers) => {
    // As UTF-8 bytes, without the control bytes uWS refuses by holding the socket (the raw-bytes case below has those).
    const bytes = (v: string) => Buffer.from(v.replace(/[\0-\x08\x0a-\x1f]/g, ''), 'utf8').toString('latin1');
    const lines = headers.map(([k, v]) => `${k}: ${bytes(v)}\r\n`).join('');
    const hasHost = headers.some(([k]) => k === 'Host');
    const target = `${path}?project=fuzz&after=now`;
    const res = await rawRequest(daemon.port, `GET ${target} HTTP/1.1\r\n${hasHost ? '' : 'Host: x\r\n'}${lines}Connection: close\r\n\r\n`, { idleMs: 13_000, until: streamStarted });
    const why = rawVerdict(res, target);
    if (why) throw new Error(`${JSON.stringify(lines)}: ${why}`);
  }));
});

/**
 * Enough has come to judge the answer: a stream's head and first frame, or
 * a head and its Content-Length of body (a GET with a Content-Length of
 * its own keeps the connection waiting for that body after the answer).
 */
function streamStarted(received: string): boolean {
  const split = received.indexOf('\r\n\r\n');
  if (split < 0) return false;
  const head = received.slice(0, split);
  if (/text\/event-stream/i.test(head)) return /\n\n/.test(received.slice(split + 4));
  const length = /^content-length:\s*(\d+)/im.exec(head);
  return length !== null && received.length - split - 4 >= Number(length[1]);
}

/** A raw answer: a valid one, or a close within uWS's header timeout (what it does with what it cannot parse). */
function rawVerdict(res: RawResponse, target: string): string | null {
  if (res.ended === 'timeout') return `held without an answer for ${res.ms} ms`;
  if (res.status === 0) return res.ms < 13_000 ? null : `closed only after ${res.ms} ms`;
  return verdict(res.status, rawHeaderOf(res, 'content-type'), res.body.replace(/^[0-9a-f]+\r\n/, ''), target);
}
const rawHeaderOf = (res: RawResponse, name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(res.head)?.[1]?.trim() ?? '';

t.test('random bytes, CR, LF and NUL anywhere in the request: an answer or a close, within the header timeout', async (t) => {
  const fragment = fc.oneof(fc.string({ unit: 'binary-ascii', maxLength: 30 }), fc.constantFrom('\r\n', '\n', '\r', '\0', ' ', 'HTTP/1.1', 'GET ', '/v1/events?project=fuzz', '/v1/changes?project=fuzz', 'Host: x', ':', '\r\n\r\n'));
  const requests = fc.sample(fc.array(fragment, { minLength: 1, maxLength: 12 }).map((parts) => parts.join('')), { numRuns: 300 * scale, seed: 7 });
  // In parallel batches: what uWS cannot parse waits for its 10 s timeout, and one after another would take an hour.
  let bad: string[] = [];
  for (let i = 0; i < requests.length; i += 150) {
    const batch = requests.slice(i, i + 150);
    const results = await Promise.all(batch.map((r) => rawRequest(daemon.port, r + '\r\n\r\n', { idleMs: 14_000, until: streamStarted })));
    bad = bad.concat(results.flatMap((res, j) => {
      const target = /^GET (\S+)/.exec(batch[j])?.[1] ?? '';
      const why = rawVerdict(res, target);
      return why && !(res.status === 200 && why.startsWith('a stream')) ? [`${JSON.stringify(batch[j])}: ${why}`] : [];
    }));
  }
  t.same(bad, [], `${requests.length} random requests: each answered well or closed`);
  cases += requests.length;
});

t.test('the daemon never crashed, and the witnesses received every event', async (t) => {
  t.equal(daemon.proc.exitCode, null, 'the daemon is running');
  t.equal((await getJson(`${daemon.base}/healthz`)).status, 200, 'and answers');
  t.notOk(daemon.logs.some((l) => (l.level as number) >= 50), 'no error in its log');
  writing = false;
  await writer;
  const [marker] = await emit(db.pool, 'fuzz-witness');
  await Promise.all(witnesses.map((w) => w.waitFor((c) => c.seqs.includes(marker), 15_000, 'the marker')));
  for (const w of witnesses) t.same(w.seqs, [...written, marker], `a witness received all ${written.length + 1} events, in order`);
  t.comment(`${cases} fuzz cases in all`);
});
