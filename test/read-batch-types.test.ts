// readBatch with every shape of types filter: exact only, prefix only, both.
// Regression: the prefix-only shape referenced $6 with no $5, Postgres could
// not determine $5's type, and every catch-up or poll with e.g. types=pr_*
// failed (answered 503 database_unavailable, forever).
import t from 'tap';
import { readBatch } from '../src/db/read-batch.js';
import { testDatabase } from './harness/db.js';

const db = await testDatabase(t);
await db.pool.query(`SELECT pgfeed.emit('typed', 'pr_opened', '{}'), pgfeed.emit('typed', 'orders.insert', '{}'), pgfeed.emit('typed', 'other', '{}')`);
// Let the horizon pass the emits (they committed above; a fresh snapshot sees them below it).
await db.pool.query('SELECT 1');

const cases: Array<[string[], string[]]> = [
  [[], ['pr_opened', 'orders.insert', 'other']],
  [['pr_opened'], ['pr_opened']],
  [['pr_*'], ['pr_opened']],
  [['orders.*', 'pr_*'], ['pr_opened', 'orders.insert']],
  [['other', 'pr_*'], ['pr_opened', 'other']],
];
for (const [types, want] of cases) {
  t.test(`types=${types.join(',') || '(none)'}`, async (t) => {
    const batch = await readBatch(db.pool, { xid: 0, seq: 0 }, { project: 'typed', types }, 512);
    t.same(batch.rows.map((r) => r.type).sort(), [...want].sort());
  });
}
