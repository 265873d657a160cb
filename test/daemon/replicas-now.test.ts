// after=now across replicas. "now" is the opening replica's view: the last
// row its shared tail read below its horizon (src/feed/cursor.ts). A stream
// opened there and resumed on another replica with Last-Event-ID gets exactly
// the events after that point; a stream that received nothing before the cut
// has no cursor to resume from, so the next replica resolves now afresh
// (docs/http.md, docs/ordering.md).
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { deliveryOrder, emit } from '../helpers/change-log.js';
import { startDaemon } from '../helpers/daemon.js';
import { followStream } from '../helpers/event-source.js';
import { connectSse } from '../helpers/sse-client.js';
import { followSse } from '../helpers/sse-follower.js';
import { startSwitchProxy } from '../helpers/switch-proxy.js';
import { waitUntil } from '../helpers/wait.js';

const db = await testDatabase(t);
const env = { PGFEED_RETRY_MS: '100' };
const [a, b] = await Promise.all([startDaemon(t, db.url, env), startDaemon(t, db.url, env)]);

/** Writes an event and waits until replica `at`'s tail has read it: its "now" is then at or past it. */
async function readBy(at: string, project: string): Promise<number> {
  // A live stream is fed by the tail: once it has the witness, the tail has read past the event.
  const w = await connectSse(`${at}/v1/events?project=${project}-witness&after=now`);
  await w.waitFor((c) => c.retry !== null);
  const [seq] = await emit(db.pool, project, 'e');
  const [witness] = await emit(db.pool, `${project}-witness`, 'e');
  await w.waitFor((c) => c.seqs.includes(witness), 10_000, 'the witness on the replica');
  w.close();
  return seq;
}

t.test('opened at after=now on one replica, resumed with Last-Event-ID on another: exactly the events after the first one\'s now', async (t) => {
  const proxyEs = await startSwitchProxy(t, a.port);
  const proxyRaw = await startSwitchProxy(t, a.port);
  const before = await readBy(a.base, 'hop');
  // A transaction that has its xid before the streams open and commits after:
  // it is above the horizon at the open, so it is after "now" and owed.
  const open = await db.pool.connect();
  t.teardown(() => open.release());
  await open.query('BEGIN');
  await open.query(`SELECT pgfeed.emit('hop', 'e', '{}')`);
  const es = followStream(t, `${proxyEs.base}/v1/events?project=hop&after=now`, ['e']);
  const raw = followSse(t, `${proxyRaw.base}/v1/events?project=hop&after=now`);
  await waitUntil(() => es.opens === 1, 10_000, 'the EventSource to open');
  await raw.waitFor(() => raw.opens === 1, 10_000, 'the raw stream to open');
  await open.query('COMMIT');
  const [first] = await emit(db.pool, 'hop', 'e');
  await es.waitFor(() => es.seqs.includes(first), 10_000, 'the first event after now');
  await raw.waitFor(() => raw.seqs.includes(first), 10_000, 'the first event after now');
  for (const p of [proxyEs, proxyRaw]) {
    p.target = b.port;
    p.dropAll();
  }
  await emit(db.pool, 'hop', 'e', 5);
  const [marker] = await emit(db.pool, 'hop', 'e');
  await es.waitFor(() => es.seqs.includes(marker), 15_000, 'the marker');
  await raw.waitFor(() => raw.seqs.includes(marker), 15_000, 'the marker');
  const all = await deliveryOrder(db.pool, 'hop');
  const after = all.slice(all.indexOf(before) + 1);
  t.equal(after.length, 8, 'the held transaction, the first event, five more and the marker');
  for (const [name, s, p] of [['EventSource', es, proxyEs], ['raw', raw, proxyRaw]] as const) {
    t.same(s.seqs, after, `${name}: exactly the events committed after replica A's now, once each, in order`);
    t.same([...new Set(p.connections)], [a.port, b.port], `${name}: opened on A, resumed on B`);
    t.ok(s.connOf.at(-1)! > 1, `${name}: the later events came over the resumed connection`);
  }
});

t.test('opened at after=now, cut before any event: the reconnect starts at the next replica\'s now', async (t) => {
  const proxy = await startSwitchProxy(t, a.port);
  await readBy(a.base, 'quiet');
  await readBy(b.base, 'quiet');
  const es = followStream(t, `${proxy.base}/v1/events?project=quiet&after=now`, ['e']);
  await waitUntil(() => es.opens === 1, 10_000, 'the stream to open on A');
  proxy.target = b.port;
  proxy.dropAll();
  await waitUntil(() => es.opens === 2, 10_000, 'the stream to reopen on B');
  const later = await emit(db.pool, 'quiet', 'e', 5);
  await es.waitFor(() => es.seqs.includes(later[4]), 15_000, 'the last event');
  const [marker] = await emit(db.pool, 'quiet', 'e');
  await es.waitFor(() => es.seqs.includes(marker), 15_000, 'the marker');
  t.same(es.seqs, [...later, marker], 'the events written after it reopened, once each, and nothing from before it opened');
  t.same(proxy.connections, [a.port, b.port], 'opened on A, reopened on B');
});
