// Row security: what PGFEED_ROW_SECURITY costs the daemon's reads of the
// change log. Two ways of reading the same table, side by side:
//
//   off   the table's owner, whom no policy binds, reading on the pool
//         (what the daemon does without the setting)
//   on    a role the policies of sql/005 bind, each read in a read-only
//         transaction that names its project with SET LOCAL (ReadScope)
//
// Three read shapes, each the daemon's own query:
//   replay   one stream's catch-up through its project's whole history,
//            512-row batches (readBatch with a project filter)
//   resume   a stream a few events behind: one short batch (BEHIND rows)
//   lookup   a Last-Event-ID resolved to a position (positionOf)
//
// Rounds alternate which way goes first; each ratio is the median of the
// rounds' on/off ratios.
//
//   npm run bench:rls
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { migrate } from '../src/db/migrate.js';
import { positionOf } from '../src/db/position-of.js';
import { readBatch } from '../src/db/read-batch.js';
import { ReadScope } from '../src/db/row-security.js';
import type { Position } from '../src/interfaces.js';
import { START } from '../src/position.js';
import { startScratchPostgres } from '../test/helpers/scratch-postgres.js';
import { fillLog } from './lib/backlog.js';

const EVENTS = 200_000;
const PROJECTS = 10;
const PROJECT = 'p3';
const RESUMES = 500;
const BEHIND = 5;
const ROUNDS = 7;
const WAYS = ['off', 'on'] as const;
type Way = (typeof WAYS)[number];
type Shape = 'replay' | 'resume' | 'lookup';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Reads one project's history from the start, as a catching-up stream does; returns the rows read. */
async function replay(scope: ReadScope): Promise<number> {
  let pos: Position = START;
  let rows = 0;
  for (;;) {
    const b = await scope.project(PROJECT, (db) => readBatch(db, pos, { project: PROJECT, types: [] }));
    rows += b.rows.length;
    if (!b.full) return rows;
    pos = b.covered;
  }
}

async function main(): Promise<void> {
  const server = await startScratchPostgres({ prefix: 'pgfeed-bench-pg-', flags: ['-c', 'max_connections=50', '-c', 'fsync=off'] });
  const pools: pg.Pool[] = [];
  try {
    await migrate(server.url());
    const c = new pg.Client({ connectionString: server.url(), application_name: 'pgfeed:bench:rls' });
    await c.connect();
    await fillLog(c, EVENTS, `'p' || (g % ${PROJECTS})`);
    await c.query(`CREATE ROLE bench_reader LOGIN PASSWORD 'bench';
      GRANT USAGE ON SCHEMA pgfeed TO bench_reader; GRANT SELECT ON pgfeed.change_log, pgfeed.settings TO bench_reader;
      ALTER TABLE pgfeed.change_log ENABLE ROW LEVEL SECURITY`);
    const { rows: seqRows } = await c.query<{ seq: string; xid: string }>(
      `SELECT seq::text, xid::text FROM pgfeed.change_log WHERE project = $1 ORDER BY xid DESC, seq DESC LIMIT $2`,
      [PROJECT, RESUMES + BEHIND],
    );
    await c.end();
    const readerUrl = new URL(server.url());
    [readerUrl.username, readerUrl.password] = ['bench_reader', 'bench'];
    const pool = (url: string) => {
      const p = new pg.Pool({ connectionString: url, max: 1 });
      pools.push(p);
      return p;
    };
    const scopes: Record<Way, ReadScope> = { off: new ReadScope(pool(server.url())), on: new ReadScope(pool(readerUrl.href), true) };
    // Lookups resolve RESUMES cursors near the head; each resume reads the BEHIND events after the same one.
    const cursors = seqRows.slice(BEHIND).map((r) => ({ seq: Number(r.seq), pos: { xid: Number(r.xid), seq: Number(r.seq) } }));
    const behind = cursors[0].pos;
    const shapes: Record<Shape, (s: ReadScope) => Promise<number>> = {
      replay,
      resume: async (s) => {
        for (let i = 0; i < RESUMES; i++) await s.project(PROJECT, (db) => readBatch(db, behind, { project: PROJECT, types: [] }));
        return RESUMES;
      },
      lookup: async (s) => {
        for (const cur of cursors) await s.project(PROJECT, (db) => positionOf(db, cur.seq, PROJECT));
        return cursors.length;
      },
    };
    // Same results both ways, or the comparison means nothing.
    const replayed = { off: await replay(scopes.off), on: await replay(scopes.on) };
    if (replayed.off !== replayed.on || replayed.off !== EVENTS / PROJECTS) throw new Error(`the two ways read different rows: ${JSON.stringify(replayed)}`);
    const perS: Record<Shape, Record<Way, number[]>> = { replay: { off: [], on: [] }, resume: { off: [], on: [] }, lookup: { off: [], on: [] } };
    for (let round = 0; round < ROUNDS; round++) {
      for (const shape of Object.keys(shapes) as Shape[]) {
        for (const way of round % 2 ? [...WAYS].reverse() : WAYS) {
          const t0 = performance.now();
          const n = await shapes[shape](scopes[way]);
          perS[shape][way].push(n / ((performance.now() - t0) / 1000));
        }
      }
    }
    const ratio = (shape: Shape) => Number(median(perS[shape].on.map((x, i) => x / perS[shape].off[i])).toFixed(2));
    const per = (shape: Shape) => Object.fromEntries(WAYS.map((w) => [w, Math.round(median(perS[shape][w]))]));
    console.log(
      JSON.stringify(
        {
          events: EVENTS,
          projects: PROJECTS,
          rounds: ROUNDS,
          replay_rows_per_s: per('replay'),
          resume_reads_per_s: per('resume'),
          lookups_per_s: per('lookup'),
          replay_on_vs_off: ratio('replay'),
          resume_on_vs_off: ratio('resume'),
          lookup_on_vs_off: ratio('lookup'),
        },
        null,
        2,
      ),
    );
  } finally {
    for (const p of pools) await p.end();
    await server.stop();
  }
}

await main();
