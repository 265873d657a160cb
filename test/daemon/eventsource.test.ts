// A standard EventSource (the `eventsource` package) keeps every event,
// exactly once and in order, through the temporary conditions that would
// otherwise close it for good: the EventSource standard fails a connection
// on any status but 200, so a 503 on a reconnect was the end of the stream.
// Each case runs real daemons on real sockets, behind a TCP proxy, since an
// EventSource reconnects to one URL.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { deliveryOrder, emit, type Queryable } from '../helpers/change-log.js';
import { startDaemon } from '../helpers/daemon.js';
import { followStream } from '../helpers/event-source.js';
import { Cluster } from '../helpers/pg-cluster.js';
import { connectSse, getJson } from '../helpers/sse-client.js';
import { startSwitchProxy } from '../helpers/switch-proxy.js';
import { waitUntil } from '../helpers/wait.js';

t.test('shutdown: the EventSource reconnects to the next daemon and misses nothing', async (t) => {
  const db = await testDatabase(t);
  const q: Queryable = db.pool;
  // A short retry: the reconnect comes while the stopping daemon still holds its connections.
  const env = { PGFEED_RETRY_MS: '100', PGFEED_SHUTDOWN_TIMEOUT_MS: '5000' };
  const [a, b] = await Promise.all([startDaemon(t, db.url, env), startDaemon(t, db.url, env)]);
  const proxy = await startSwitchProxy(t, a.port);
  const s = followStream(t, `${proxy.base}/v1/events?project=stop&after=0`, ['tick']);
  await emit(q, 'stop', 'tick', 20);
  await s.waitFor(() => s.seqs.length === 20, 10_000, 'the first 20 events');
  proxy.target = b.port;
  const stopped = a.stop('SIGTERM');
  await emit(q, 'stop', 'tick', 20);
  await s.waitFor(() => s.seqs.length >= 40, 20_000, 'all 40 events');
  t.equal(await stopped, 0, 'the first daemon exited 0');
  await emit(q, 'stop', 'tick', 1); // a marker: nothing more than it may arrive
  await s.waitFor(() => s.seqs.length >= 41, 10_000, 'the marker');
  t.same(s.seqs, await deliveryOrder(q, 'stop'), 'every event exactly once, in (xid, seq) order');
  t.ok(s.opens >= 2, `it reconnected (${s.opens} opens)`);
  t.equal(s.es.readyState, s.es.OPEN, 'and is still open');
});

t.test('a Postgres outage: a reconnect during it is retried until Postgres is back', async (t) => {
  const cluster = await Cluster.create();
  t.teardown(() => cluster.destroy());
  // Retried while Postgres is down, so the writes wait out the outage.
  const q: Queryable = { query: (sql, p) => cluster.query(sql, p) };
  const d = await startDaemon(t, cluster.url, { PGFEED_RETRY_MS: '200' });
  const proxy = await startSwitchProxy(t, d.port);
  const s = followStream(t, `${proxy.base}/v1/events?project=outage&after=0`, ['tick']);
  await emit(q, 'outage', 'tick', 10);
  await s.waitFor(() => s.seqs.length === 10, 10_000, 'the first 10 events');
  await cluster.stop('fast');
  // The connection breaks during the outage, as a network failure or a load balancer would break it.
  proxy.dropAll();
  await s.waitFor(() => s.unavailable.includes('database_unavailable'), 15_000, 'a pgfeed.unavailable answer');
  await cluster.start();
  await emit(q, 'outage', 'tick', 10);
  await s.waitFor(() => s.seqs.length >= 20, 30_000, 'all 20 events');
  await emit(q, 'outage', 'tick', 1); // a marker: nothing more than it may arrive
  await s.waitFor(() => s.seqs.length >= 21, 10_000, 'the marker');
  t.same(s.seqs, await deliveryOrder(q, 'outage'), 'every event exactly once, in (xid, seq) order');
  t.equal(s.es.readyState, s.es.OPEN, 'and is still open');
});

t.test('over capacity: the EventSource waits for a place, then resumes; event_names=off feeds onmessage', async (t) => {
  const db = await testDatabase(t);
  const q: Queryable = db.pool;
  // Retries 1-2 s apart: time to give its place to another stream in between.
  const d = await startDaemon(t, db.url, { PGFEED_MAX_STREAMS: '1', PGFEED_RETRY_MS: '1000' });
  const proxy = await startSwitchProxy(t, d.port);
  const s = followStream(t, `${proxy.base}/v1/events?project=full&after=0&event_names=off`);
  await emit(q, 'full', 'tick', 10);
  await s.waitFor(() => s.seqs.length === 10, 10_000, 'the first 10 events, through onmessage');
  proxy.dropAll();
  await waitUntil(async () => (await getJson(`${d.base}/readyz`)).body.streams === 0, 5_000, 'the place to be free');
  // Not an EventSource's Accept: had the reconnect taken the place first, this would be a 503.
  const other = await connectSse(`${d.base}/v1/events?project=elsewhere&after=now`, { Accept: '*/*' });
  t.teardown(() => other.close());
  t.equal(other.status, 200, 'another stream takes the place');
  await emit(q, 'full', 'tick', 10);
  await s.waitFor(() => s.unavailable.includes('over_capacity'), 15_000, 'a pgfeed.unavailable answer');
  other.close();
  await s.waitFor(() => s.seqs.length >= 20, 20_000, 'all 20 events');
  await emit(q, 'full', 'tick', 1); // a marker: nothing more than it may arrive
  await s.waitFor(() => s.seqs.length >= 21, 10_000, 'the marker');
  t.same(s.seqs, await deliveryOrder(q, 'full'), 'every event exactly once, in (xid, seq) order');
  t.equal(s.es.readyState, s.es.OPEN, 'and is still open');
});
