// Capture of UPDATEs: what migration 002's move detection costs an update of
// a table tracked by a project column. Three tables of identical shape, each
// updated whole (10,000 rows, one statement) and row by row, in turn:
//
//   untracked   no trigger: the baseline
//   v001        pgfeed.capture() as sql/001 defined it (no move events)
//   current     pgfeed.capture() as migrated now (move_out/move_in pairs)
//
// No row changes project here, so both capture designs write the same events:
// the difference is the pairing and ordering work alone. Rounds are
// interleaved in rotating order and each ratio is the median of the rounds.
//
//   npm run bench:capture-update
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { migrate } from '../src/db/migrate.js';
import { startScratchPostgres } from '../test/helpers/scratch-postgres.js';

const ROWS = 10_000;
const SINGLE = 500;
const ROUNDS = 7;
const DESIGNS = ['untracked', 'v001', 'current'] as const;
type Design = (typeof DESIGNS)[number];

/** sql/001's capture function, under another name, read from the migration itself. */
function v001Capture(): string {
  const sql = readFileSync(new URL('../sql/001_change_log.sql', import.meta.url), 'utf8');
  const start = sql.indexOf('CREATE FUNCTION pgfeed.capture()');
  const end = sql.indexOf('END $$;', start) + 'END $$;'.length;
  if (start < 0 || end < start) throw new Error('bench/capture-update.bench.ts: sql/001 no longer defines pgfeed.capture() as expected');
  return sql.slice(start, end).replace('CREATE FUNCTION pgfeed.capture()', 'CREATE FUNCTION pgfeed_bench.capture_001()');
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const server = await startScratchPostgres({ prefix: 'pgfeed-bench-pg-', flags: ['-c', 'max_connections=50'] });
  try {
    await migrate(server.url());
    const c = new pg.Client({ connectionString: server.url(), application_name: 'pgfeed:bench:capture-update' });
    await c.connect();
    await c.query(`CREATE SCHEMA pgfeed_bench; ${v001Capture()}`);
    for (const d of DESIGNS) {
      await c.query(`CREATE TABLE bench_${d} (id int PRIMARY KEY, project text NOT NULL, v int NOT NULL);
        INSERT INTO bench_${d} SELECT g, 'p' || (g % 8), 0 FROM generate_series(1, ${ROWS}) g`);
    }
    await c.query(`SELECT pgfeed.track('bench_current', 'project')`);
    await c.query(`CREATE TRIGGER capture_update AFTER UPDATE ON bench_v001 REFERENCING OLD TABLE AS pgfeed_old NEW TABLE AS pgfeed_new
      FOR EACH STATEMENT EXECUTE FUNCTION pgfeed_bench.capture_001('bench_v001', 'project', '')`);
    const bulk: Record<Design, number[]> = { untracked: [], v001: [], current: [] };
    const single: Record<Design, number[]> = { untracked: [], v001: [], current: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < DESIGNS.length; k++) {
        const d = DESIGNS[(round + k) % DESIGNS.length];
        let t0 = performance.now();
        await c.query(`UPDATE bench_${d} SET v = v + 1`);
        bulk[d].push(ROWS / ((performance.now() - t0) / 1000));
        t0 = performance.now();
        for (let i = 1; i <= SINGLE; i++) await c.query(`UPDATE bench_${d} SET v = v + 1 WHERE id = $1`, [i]);
        single[d].push(SINGLE / ((performance.now() - t0) / 1000));
      }
      await c.query('TRUNCATE pgfeed.change_log');
    }
    await c.end();
    const ratio = (m: Record<Design, number[]>, a: Design, b: Design) => median(m[a].map((x, i) => x / m[b][i]));
    const out = {
      rows: ROWS,
      rounds: ROUNDS,
      bulk_rows_per_s: Object.fromEntries(DESIGNS.map((d) => [d, Math.round(median(bulk[d]))])),
      single_tx_per_s: Object.fromEntries(DESIGNS.map((d) => [d, Math.round(median(single[d]))])),
      bulk_current_vs_v001: Number(ratio(bulk, 'current', 'v001').toFixed(2)),
      bulk_current_vs_untracked: Number(ratio(bulk, 'current', 'untracked').toFixed(2)),
      single_current_vs_v001: Number(ratio(single, 'current', 'v001').toFixed(2)),
      single_current_vs_untracked: Number(ratio(single, 'current', 'untracked').toFixed(2)),
    };
    console.log(JSON.stringify(out, null, 2));
  } finally {
    await server.stop();
  }
}

await main();
