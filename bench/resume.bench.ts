// resume: what resolving a cursor costs on a large log, the query run on
// every reconnect with Last-Event-ID or after=<seq>. On a 1M-row change log
// it times the lookup as it was (the event's xid, pruned_through and the
// project's min(seq), in one query, on every resume) against positionOf()
// as it is (the xid and pruned_through; the earliest retained event only for
// an expired cursor), alternating the two on the same cursors.
//
// The projects of the log:
//   p0 … p9  the bulk, interleaved across the whole log;
//   sparse   every 1000th event;
//   recent   only the newest 10,000 events (a project that started late).
// Then the oldest 1000 events are pruned, and expired cursors are timed too.

import type pg from 'pg';
import { positionOf } from '../src/db/position-of.js';
import { fillLog } from './lib/backlog.js';
import type { BenchDatabase } from './lib/bench-db.js';
import { isMain, runBench, type Scenario } from './lib/runner.js';
import { round } from './lib/summary.js';

const LOG_ROWS = 1_000_000;
const RECENT_ROWS = 10_000;
const PRUNED = 1_000;
const LOOKUPS = 200;
const BLOCK = 20;

/** The lookup before: min(seq) computed on every resume, found or not. */
const OLD_LOOKUP = `SELECT (SELECT xid::text FROM pgfeed.change_log WHERE seq = $1 AND project = $2) AS xid,
        (SELECT pruned_through::text FROM pgfeed.settings) AS pruned,
        (SELECT min(seq)::text FROM pgfeed.change_log WHERE project = $2) AS earliest`;

interface LookupRow {
  project: string;
  cursor: 'found' | 'expired';
  lookups: number;
  old_p50_ms: number;
  old_p99_ms: number;
  new_p50_ms: number;
  new_p99_ms: number;
  /** old p50 / new p50. */
  ratio: number;
}

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/**
 * Both lookups on the same cursors, in blocks of BLOCK that alternate which
 * goes first, so that neither always runs on a warmer cache. Not one cursor
 * at a time: right after an old lookup of 200 ms of CPU, the next query on
 * these two shared cores took twice as long as it does alone.
 */
async function compare(c: pg.Client, project: string, cursor: LookupRow['cursor'], seqs: number[]): Promise<LookupRow> {
  const before: number[] = [];
  const after: number[] = [];
  const runOld = async (block: number[]) => {
    for (const seq of block) before.push(await timed(() => c.query(OLD_LOOKUP, [String(seq), project])));
  };
  const runNew = async (block: number[]) => {
    for (const seq of block) after.push(await timed(() => positionOf(c, seq, project)));
  };
  // Warm-up, not counted.
  for (const seq of seqs.slice(0, 5)) await Promise.all([c.query(OLD_LOOKUP, [String(seq), project]), positionOf(c, seq, project)]);
  for (let i = 0; i * BLOCK < seqs.length; i++) {
    const block = seqs.slice(i * BLOCK, (i + 1) * BLOCK);
    if (i % 2) await runOld(block).then(() => runNew(block));
    else await runNew(block).then(() => runOld(block));
  }
  const oldP50 = quantile(before, 0.5);
  const newP50 = quantile(after, 0.5);
  return {
    project,
    cursor,
    lookups: seqs.length,
    old_p50_ms: round(oldP50, 3),
    old_p99_ms: round(quantile(before, 0.99), 3),
    new_p50_ms: round(newP50, 3),
    new_p99_ms: round(quantile(after, 0.99), 3),
    ratio: round(oldP50 / newP50, 1),
  };
}

/** `n` seqs of the project picked at random (with the sample's own randomness, not a fixed seed). */
async function cursorsOf(c: pg.Client, project: string, n: number, maxSeq?: number): Promise<number[]> {
  const { rows } = await c.query<{ seq: string }>(
    `SELECT seq::text FROM pgfeed.change_log WHERE project = $1 AND seq <= $2 ORDER BY random() LIMIT $3`,
    [project, String(maxSeq ?? Number.MAX_SAFE_INTEGER), n],
  );
  return rows.map((r) => Number(r.seq));
}

export interface ResumeResult {
  log_rows: number;
  /** Over the found-cursor rows: the slowest project's old p50 and the new p50 there. */
  found_old_p50_ms: number;
  found_new_p50_ms: number;
  found_ratio: number;
  runs: LookupRow[];
  [extra: string]: unknown;
}

export const resume: Scenario<ResumeResult> = {
  name: 'resume',
  steps: () => 3,
  async run(ctx) {
    let database: BenchDatabase | null = null;
    const runs: LookupRow[] = [];
    try {
      database = await ctx.db.fresh();
      ctx.progress.step(`resume: writing a ${LOG_ROWS}-event log`);
      await ctx.db.withClient(database.name, async (c) => {
        await fillLog(c, LOG_ROWS, `CASE WHEN g > ${LOG_ROWS - RECENT_ROWS} THEN 'recent' WHEN g % 1000 = 0 THEN 'sparse' ELSE 'p' || (g % 10) END`);
        ctx.progress.tick();
        ctx.progress.step(`resume: ${LOOKUPS} lookups of found cursors per project, old and new`);
        for (const project of ['p1', 'sparse', 'recent']) runs.push(await compare(c, project, 'found', await cursorsOf(c, project, LOOKUPS)));
        ctx.progress.tick();
        ctx.progress.step(`resume: the oldest ${PRUNED} events pruned, expired cursors`);
        const expired = await cursorsOf(c, 'p1', LOOKUPS, PRUNED);
        await c.query('DELETE FROM pgfeed.change_log WHERE seq <= $1', [PRUNED]);
        await c.query('UPDATE pgfeed.settings SET pruned_through = $1', [PRUNED]);
        await c.query('VACUUM ANALYZE pgfeed.change_log');
        runs.push(await compare(c, 'p1', 'expired', expired));
        ctx.progress.tick();
      });
    } finally {
      await database?.drop();
    }
    const found = runs.filter((r) => r.cursor === 'found');
    const worst = found.reduce((a, b) => (b.old_p50_ms > a.old_p50_ms ? b : a));
    return { log_rows: LOG_ROWS, found_old_p50_ms: worst.old_p50_ms, found_new_p50_ms: worst.new_p50_ms, found_ratio: worst.ratio, runs };
  },
  table(r) {
    return r.runs.map((x) => [
      `${x.project}, ${x.cursor} cursor`,
      `old p50 ${x.old_p50_ms} ms (p99 ${x.old_p99_ms}), new p50 ${x.new_p50_ms} ms (p99 ${x.new_p99_ms}), ${x.ratio}x`,
    ]);
  },
  charts(r) {
    return {
      charts: [
        { kind: 'bar', title: 'cursor lookup before (p50)', yLabel: 'ms', bars: r.runs.map((x) => ({ label: `${x.project} ${x.cursor}`, value: x.old_p50_ms })) },
        { kind: 'bar', title: 'cursor lookup after (p50)', yLabel: 'ms', bars: r.runs.map((x) => ({ label: `${x.project} ${x.cursor}`, value: x.new_p50_ms })) },
      ],
      caption: `resume: cursor lookups on a ${r.log_rows}-row change log, ${LOOKUPS} per row of the table`,
    };
  },
};

if (isMain(import.meta.url)) await runBench([resume], process.argv.slice(2), 'resume');
