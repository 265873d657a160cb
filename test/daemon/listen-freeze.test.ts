// A LISTEN connection whose peer stops answering without closing (a pulled
// cable, a dead NAT entry) looks open forever: no FIN, no RST, and every
// query on it waits. The Postgres backend is frozen with SIGSTOP to make one;
// the daemon must notice within its heartbeat and timeout, say so to the
// streams, reconnect, and read what was committed meanwhile.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { emit } from '../helpers/change-log.js';
import { metric, startDaemon } from '../helpers/daemon.js';
import { connectSse } from '../helpers/sse-client.js';
import { waitUntil } from '../helpers/wait.js';

const HEARTBEAT_MS = 300;
const TIMEOUT_MS = 1_000;

const db = await testDatabase(t);
// A slow safety poll: events written while LISTEN is away come only from the read after the reconnect.
const daemon = await startDaemon(t, db.url, {
  PGFEED_POLL_MS: '60000',
  PGFEED_LISTEN_HEARTBEAT_MS: String(HEARTBEAT_MS),
  PGFEED_LISTEN_TIMEOUT_MS: String(TIMEOUT_MS),
});

const listenPid = async () => {
  const { rows } = await db.pool.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE application_name = 'pgfeed:listen' AND datname = current_database()`);
  return rows.map((r) => r.pid);
};

/** Signalling a backend needs the server on this host, and the right to signal it (root, or its user). */
function cannotSignal(pid: number | undefined): string | false {
  if (!pid) return 'no LISTEN backend found';
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return `cannot signal the Postgres backend (${(err as Error).message}): the server is not on this host`;
  }
}

t.test('a frozen LISTEN backend is noticed within heartbeat + timeout and replaced, with a catch-up read', { skip: cannotSignal((await listenPid())[0]) }, async (t) => {
  const c = await connectSse(`${daemon.base}/v1/events?project=f&after=now`);
  t.teardown(() => c.close());
  await c.waitFor((c) => c.retry !== null);
  const [first] = await emit(db.pool, 'f');
  await c.waitFor((c) => c.seqs.length === 1, 5_000, 'an event through LISTEN');

  const [pid] = await listenPid();
  process.kill(pid, 'SIGSTOP');
  // SIGCONT however the test ends: a stopped backend ignores even pg_terminate_backend.
  let continued = false;
  const resume = () => {
    if (continued) return;
    continued = true;
    process.kill(pid, 'SIGCONT');
  };
  t.teardown(resume);
  const frozenAt = Date.now();
  // Committed while the listener cannot hear: their NOTIFYs go to the frozen backend.
  const meanwhile = await emit(db.pool, 'f', 'tick', 3);

  const bound = HEARTBEAT_MS + TIMEOUT_MS;
  await c.waitFor((c) => c.events.some((e) => e.event === 'pgfeed.degraded'), bound + 3_000, 'pgfeed.degraded');
  const noticedMs = Date.now() - frozenAt;
  t.ok(noticedMs <= bound + 1_000, `noticed after ${noticedMs} ms (heartbeat ${HEARTBEAT_MS} + timeout ${TIMEOUT_MS}, plus slack)`);
  t.match(c.events.find((e) => e.event === 'pgfeed.degraded')!.json, { reason: 'listen_down', since: String });
  await waitUntil(() => daemon.logs.some((l) => l.msg === 'LISTEN connection silent; replacing it'), 5_000, 'the log to say why');

  await c.waitFor((c) => c.seqs.length === 4, 10_000, 'the events written while frozen');
  t.same(c.seqs, [first, ...meanwhile], 'none lost, none twice, in order');
  await c.waitFor((c) => c.events.some((e) => e.event === 'pgfeed.ok'), 10_000, 'pgfeed.ok');
  t.equal(await metric(daemon.base, 'pgfeed_listen_connected'), 1, 'listening again');
  const now = await listenPid();
  t.ok(now.some((p) => p !== pid), `on a new backend (${now.filter((p) => p !== pid).join(', ')})`);

  // The new connection hears notifications: an event arrives well before the 60 s poll.
  resume();
  const [after] = await emit(db.pool, 'f');
  await c.waitFor((c) => c.seqs.includes(after), 5_000, 'an event through the new LISTEN connection');
  t.same(c.events.filter((e) => e.event?.startsWith('pgfeed.')).map((e) => e.event), ['pgfeed.degraded', 'pgfeed.ok'], 'one transition each way');
});
