// Out-of-order commits over SSE: every subscriber gets exactly the committed
// set, in (xid, seq) order, while writers commit out of seq order on purpose.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { startDaemon } from '../helpers/daemon.js';
import { heldAndFlushed } from '../helpers/held-witness.js';
import { connectSse, type SseClient } from '../helpers/sse-client.js';
import { sleep } from '../helpers/wait.js';
import { mulberry32 } from '../helpers/random.js';
import { deliveryOrder } from '../helpers/change-log.js';

const db = await testDatabase(t, { poolSize: 24 });
// Heartbeats every second, for the witness (helpers/held-witness.ts).
const daemon = await startDaemon(t, db.url, { PGFEED_HEARTBEAT_MS: '1000' });
await db.pool.query(`CREATE TABLE ev (id bigserial PRIMARY KEY, project text NOT NULL, w int);
  SELECT pgfeed.track('ev', 'project')`);


t.test('scripted: tx1 inserts first, tx2 commits first', async (t) => {
  const live = await connectSse(`${daemon.base}/v1/events?project=scripted&after=now`);
  t.teardown(() => live.close());
  await live.waitFor((c) => c.retry !== null);
  const a = await db.pool.connect();
  const b = await db.pool.connect();
  t.teardown(() => (a.release(), b.release()));
  await a.query('BEGIN');
  const s1 = Number((await a.query(`SELECT pgfeed.emit('scripted', 'one', '{}') AS s`)).rows[0].s);
  await b.query('BEGIN');
  const s2 = Number((await b.query(`SELECT pgfeed.emit('scripted', 'two', '{}') AS s`)).rows[0].s);
  await b.query('COMMIT');
  await heldAndFlushed(daemon.base, live);
  t.same(live.seqs, [], 'tx2 is withheld while tx1 is open');
  await a.query('COMMIT');
  await live.waitFor((c) => c.seqs.length === 2, 10_000, 'both');
  t.same(live.seqs, [s1, s2], 'tx1 then tx2: xid order, not commit order');
  const replay = await connectSse(`${daemon.base}/v1/events?project=scripted&after=0`);
  t.teardown(() => replay.close());
  await replay.waitFor((c) => c.seqs.length === 2);
  t.same(replay.seqs, [s1, s2], 'a replay from Postgres gives the same order');
});

t.test('randomized: 8 writers, rollbacks and savepoints, subscribers live and catching up', async (t) => {
  const seed = 0xfeed;
  const rnd = mulberry32(seed);
  const projects = ['r0', 'r1', 'r2'];
  const live = await Promise.all(projects.map((p) => connectSse(`${daemon.base}/v1/events?project=${p}&after=0`)));
  t.teardown(() => live.forEach((c) => c.close()));
  const late: { project: string; c: SseClient }[] = [];
  t.teardown(() => late.forEach(({ c }) => c.close()));
  const writer = async (w: number) => {
    const c = await db.pool.connect();
    try {
      for (let k = 0; k < 25; k++) {
        const p = projects[Math.floor(rnd() * projects.length)];
        await c.query('BEGIN');
        for (let i = 0, n = 1 + Math.floor(rnd() * 3); i < n; i++) {
          const sp = rnd() < 0.2;
          if (sp) await c.query('SAVEPOINT s');
          if (rnd() < 0.5) await c.query(`SELECT pgfeed.emit($1, 'tick', '{}')`, [p]);
          else await c.query('INSERT INTO ev (project, w) VALUES ($1, $2)', [p, w]);
          if (sp && rnd() < 0.5) await c.query('ROLLBACK TO SAVEPOINT s');
          await sleep(rnd() * 5);
        }
        await sleep(rnd() * 10);
        await c.query(rnd() < 0.15 ? 'ROLLBACK' : 'COMMIT');
        // Subscribers that join midway catch up from Postgres, then go live.
        if (w === 0 && k % 8 === 4) late.push({ project: p, c: await connectSse(`${daemon.base}/v1/events?project=${p}&after=0`) });
      }
    } finally {
      c.release();
    }
  };
  await Promise.all(Array.from({ length: 8 }, (_, w) => writer(w)));
  for (const [i, p] of projects.entries()) {
    const expected = await deliveryOrder(db.pool, p);
    await live[i].waitFor((c) => c.seqs.length >= expected.length, 15_000, `${p}: ${expected.length} events`);
    t.same(live[i].seqs, expected, `${p}: live subscriber got exactly the committed events in (xid, seq) order (seed ${seed})`);
  }
  // Every late subscriber counts: one that received nothing fails here.
  for (const { project: p, c } of late) {
    const expected = await deliveryOrder(db.pool, p);
    t.ok(expected.length > 0, `${p} has committed events`);
    await c.waitFor((c) => c.seqs.length >= expected.length, 15_000, `late subscriber of ${p}: ${expected.length} events`);
    t.same(c.seqs, expected, `late subscriber of ${p}: exactly the committed events`);
  }
  t.ok(late.length >= 2, 'subscribers joined midway');
});
