// Process lifecycle: clean shutdown on SIGTERM and SIGINT, resume across a
// restart with nothing lost and nothing twice, and streams that release
// everything they held when their client goes away.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { metric, startDaemon, type DaemonProcess } from '../helpers/daemon.js';
import { connectSse, getJson, type SseClient } from '../helpers/sse-client.js';
import { deliveryOrder, emit } from '../helpers/change-log.js';
import { satisfied, waitUntil } from '../helpers/wait.js';

const db = await testDatabase(t);
const open: SseClient[] = [];
t.teardown(() => open.forEach((c) => c.close()));
async function sse(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
  const c = await connectSse(url, headers);
  open.push(c);
  return c;
}


/** Resolves with the exit code, or rejects if the process is still running after timeoutMs. */
function exitWithin(d: DaemonProcess, signal: NodeJS.Signals, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the daemon did not exit within ${timeoutMs} ms of ${signal}`)), timeoutMs);
    void d.stop(signal).then((code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal}: exit 0, and open streams end cleanly`, async (t) => {
    const d = await startDaemon(t, db.url, { PGFEED_SHUTDOWN_TIMEOUT_MS: '5000' });
    const project = `stop-${signal}`;
    const clients = await Promise.all([0, 1, 2].map(() => sse(`${d.base}/v1/events?project=${project}&after=0`)));
    const seqs = await emit(db.pool, project, 'tick', 5);
    await Promise.all(clients.map((c) => c.waitFor((c) => c.seqs.length === 5, 10_000, 'the events')));
    // A long-poll waiting at shutdown is answered, not dropped.
    const poll = getJson(`${d.base}/v1/changes?project=${project}&after=${seqs[4]}&wait=30`);
    await waitUntil(async () => (await metric(d.base, 'pgfeed_long_polls')) === 1, 5_000, 'the long-poll to wait');
    const code = await exitWithin(d, signal, 15_000);
    t.equal(code, 0, `exit code 0 after ${signal}`);
    for (const c of clients) {
      await c.waitFor((c) => c.closed, 5_000, 'the end of the response');
      t.ok(c.ended, 'the client saw the response end, not a reset');
      t.same(c.seqs, seqs, 'it got every event before the end');
    }
    const answered = await poll;
    t.equal(answered.status, 200, 'the long-poll got its answer');
    t.same(answered.body, { events: [], next: String(seqs[4]), has_more: false, degraded: [] }, 'an empty page that keeps the cursor');
    // 'exit' can come before the daemon's last lines are read from its stdout
    // pipe: wait for them (bounded), then judge what was logged, in order.
    await satisfied(waitUntil(() => d.logs.some((l) => l.msg === 'stopped'), 5_000, 'the daemon\'s last log line'));
    const msgs = d.logs.map((l) => l.msg);
    t.ok(msgs.indexOf('shutting down') >= 0 && msgs.indexOf('stopped') > msgs.indexOf('shutting down'), 'it logged the shutdown, then that it stopped');
  });
}

t.test('SIGTERM with a client that stopped reading: exit 0, and the client can still resume', async (t) => {
  const d = await startDaemon(t, db.url, { PGFEED_SHUTDOWN_TIMEOUT_MS: '5000' });
  const project = 'stop-paused';
  const slow = await sse(`${d.base}/v1/events?project=${project}&after=now`);
  await slow.waitFor((c) => c.retry !== null, 5_000, 'the retry frame');
  slow.pause();
  // About 20 MB of frames: far more than the socket buffers hold.
  await db.pool.query(`SELECT pgfeed.emit($1, 'big', jsonb_build_object('pad', repeat('x', 10000), 'i', i)) FROM generate_series(1, 2000) i`, [project]);
  await waitUntil(async () => (await metric(d.base, 'pgfeed_subscribers', { state: 'paused' })) === 1, 15_000, 'the stream to pause');
  const code = await exitWithin(d, 'SIGTERM', 15_000);
  t.equal(code, 0, 'exit 0 although a client is not reading');
  slow.resume();
  await slow.waitFor((c) => c.closed, 15_000, 'the end of the response');
  const got = slow.seqs.length;
  t.ok(got > 0 && got < 2000, `the client got part of the backlog (${got})`);
  // Whatever it got, it resumes from there and gets the rest exactly once.
  const d2 = await startDaemon(t, db.url);
  const rest = await sse(`${d2.base}/v1/events?project=${project}`, { 'Last-Event-ID': slow.lastEventId! });
  await rest.waitFor((c) => slow.seqs.length + c.seqs.length >= 2000, 20_000, 'the rest');
  t.same([...slow.seqs, ...rest.seqs], await deliveryOrder(db.pool, project), 'nothing lost, nothing twice');
  rest.close();
});

t.test('restart: reconnecting with Last-Event-ID loses nothing and repeats nothing', async (t) => {
  const project = 'restart';
  const first = await startDaemon(t, db.url);
  const before = await emit(db.pool, project, 'tick', 10);
  const sseClient = await sse(`${first.base}/v1/events?project=${project}&after=0`);
  await sseClient.waitFor((c) => c.seqs.length === 10, 10_000, 'the events written before');
  // A poller too, following `next` from page to page.
  const polled: number[] = [];
  let cursor = '0';
  const pollOnce = async (base: string) => {
    const r = await getJson(`${base}/v1/changes?project=${project}&after=${cursor}&limit=7`);
    t.equal(r.status, 200);
    polled.push(...r.body.events.map((e: { seq: number }) => e.seq));
    if (r.body.next !== null) cursor = r.body.next;
    return r.body.has_more as boolean;
  };
  await pollOnce(first.base);

  // Writers keep going while the daemon stops and while it is down.
  const during = emit(db.pool, project, 'tick', 10);
  t.equal(await first.stop('SIGTERM'), 0);
  await sseClient.waitFor((c) => c.closed, 5_000, 'the stream to end');
  const duringSeqs = await during;
  const down = await emit(db.pool, project, 'tick', 5);

  const second = await startDaemon(t, db.url);
  const resumed = await sse(`${second.base}/v1/events?project=${project}&after=0`, { 'Last-Event-ID': sseClient.lastEventId! });
  t.equal(resumed.status, 200);
  const after = await emit(db.pool, project, 'tick', 10);
  const all = await deliveryOrder(db.pool, project);
  t.same(all.slice().sort((a, b) => a - b), [...before, ...duringSeqs, ...down, ...after].sort((a, b) => a - b), 'the truth has every write');
  await resumed.waitFor((c) => sseClient.seqs.length + c.seqs.length >= all.length, 10_000, 'every event');
  t.same([...sseClient.seqs, ...resumed.seqs], all, 'SSE: nothing lost, nothing twice, in order');
  while (await pollOnce(second.base));
  await waitUntil(async () => {
    await pollOnce(second.base);
    return polled.length >= all.length;
  }, 10_000, 'the poller to catch up');
  t.same(polled, all, 'poll: nothing lost, nothing twice, in order');
  resumed.close();
});

t.test('closing streams frees everything: subscribers, streams, handles', async (t) => {
  const d = await startDaemon(t, db.url);
  const ready = async () => (await getJson(`${d.base}/readyz`)).body;
  const subscribers = () => metric(d.base, 'pgfeed_subscribers');
  const handles = () => metric(d.base, 'nodejs_active_handles_total');
  // Warm up: the probes themselves open a pool connection once.
  await ready();
  const text = await (await fetch(`${d.base}/metrics`)).text();
  t.match(text, /^nodejs_active_handles_total \d+$/m, 'the active-handles gauge is exported');
  t.match(text, /^pgfeed_subscribers\{state="live"\} 0$/m, 'subscriber gauges start at 0');
  const baseline = await handles();

  const clients = await Promise.all(Array.from({ length: 50 }, () => sse(`${d.base}/v1/events?project=leak&after=now`)));
  t.same(clients.map((c) => c.status), Array(50).fill(200));
  await Promise.all(clients.map((c) => c.waitFor((c) => c.retry !== null, 5_000, 'the retry frame')));
  await waitUntil(async () => (await subscribers()) === 50, 5_000, '50 subscribers');
  t.equal((await ready()).streams, 50, '/readyz counts 50 streams');
  t.equal(await metric(d.base, 'pgfeed_subscribers', { state: 'live' }), 50, 'all 50 are live');
  const [seq] = await emit(db.pool, 'leak', 'tick', 1);
  await Promise.all(clients.map((c) => c.waitFor((c) => c.seqs.includes(seq), 10_000, 'an event')));

  clients.forEach((c) => c.close());
  await waitUntil(async () => (await subscribers()) === 0, 10_000, 'the subscriber gauges to return to 0');
  for (const state of ['catching_up', 'live', 'paused']) t.equal(await metric(d.base, 'pgfeed_subscribers', { state }), 0, `pgfeed_subscribers{state="${state}"} is 0`);
  await waitUntil(async () => (await ready()).streams === 0, 10_000, '/readyz streams to return to 0');
  t.equal((await ready()).long_polls, 0);
  await waitUntil(async () => (await handles()) <= baseline, 10_000, `active handles to return to ${baseline}`);
  t.pass(`active handles back to the baseline (${baseline})`);
});
