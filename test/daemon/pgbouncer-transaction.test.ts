// A daemon whose DATABASE_URL goes through a transaction-pooling PgBouncer
// (1.18 here: no prepared statements across its server connections) still
// delivers every event, through its safety poll. The shared tail's read is
// a prepared statement where it can be; here it must fall back.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { startDaemon } from '../helpers/daemon.js';
import { pgbouncerMissing, startPgBouncer } from '../helpers/pgbouncer.js';
import { connectSse } from '../helpers/sse-client.js';
import { emit } from '../helpers/change-log.js';

t.test('through a transaction-pooling PgBouncer, events still arrive', { skip: pgbouncerMissing() ?? false }, async (t) => {
  const db = await testDatabase(t);
  const url = await startPgBouncer(t, db.url, 'transaction');
  const daemon = await startDaemon(t, url, { PGFEED_POLL_MS: '100' });
  const c = await connectSse(`${daemon.base}/v1/events?project=bouncer&after=now`);
  t.teardown(() => c.close());
  await c.waitFor((c) => c.retry !== null, 5000, 'the retry frame');
  // Several bursts, so that the tail's reads land on several of PgBouncer's server connections.
  const seqs: number[] = [];
  for (let i = 0; i < 5; i++) {
    seqs.push(...(await emit(db.pool, 'bouncer', 'tick', 3)));
    await c.waitFor((c) => c.seqs.length === seqs.length, 10_000, `burst ${i + 1}`);
  }
  t.same(c.seqs, seqs, 'every event, in order');
  const failed = daemon.logs.filter((l) => /read failed/.test(String(l.msg)));
  t.same(failed.map((l) => l.err ?? l.message ?? l.msg), [], 'and no read failed on the way');
});
