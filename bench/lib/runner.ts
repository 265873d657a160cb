// The shared runner: flags, the embedded Postgres, the daemon build, the
// progress bar, and the outputs (results table, summary.json, SVG charts).
// Each scenario file exports a Scenario and runs itself through runBench().

import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BenchDb } from './bench-db.js';
import { parseOptions, type BenchOptions, type ScenarioName } from './options.js';
import { Progress } from './progress.js';
import { emptySummary, loadSummary, machine, writeResultFile, writeSummary, type Summary } from './summary.js';
import { renderCharts, type Chart } from './svg-chart.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface BenchContext {
  opts: BenchOptions;
  db: BenchDb;
  progress: Progress;
  /** Whether dist/cli.js (the pgfeed daemon) is built and can be run. */
  pgfeed: boolean;
}

export interface Scenario<R extends object = object> {
  name: ScenarioName;
  /** Progress steps this scenario will take with these options. */
  steps(o: BenchOptions): number;
  /** The scenario's summary.json section, or a string saying why it was skipped. */
  run(ctx: BenchContext): Promise<R | string>;
  /** Rows of the results table. */
  table(r: R): Array<[string, string]>;
  charts?(r: R): { charts: Chart[]; caption: string };
  /** summary.json keys of its own beyond the scenario's section (fanout's `latency`). */
  topLevel?(r: R): Partial<Summary>;
}

function newestMtime(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** Builds the daemon when src/ is newer than dist/; false when there is no daemon to build. */
async function ensureDaemon(progress: Progress): Promise<boolean> {
  const cli = path.join(ROOT, 'dist/cli.js');
  if (!existsSync(path.join(ROOT, 'src/cli.ts'))) {
    progress.note('pgfeed: src/cli.ts not found, so the daemon cannot be built; pgfeed runs are skipped (raw and naive still run)');
    return false;
  }
  if (!existsSync(cli) || statSync(cli).mtimeMs < newestMtime(path.join(ROOT, 'src'))) {
    progress.step('building pgfeed (npm run build)');
    try {
      await promisify(execFile)(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT });
    } catch (err) {
      const e = err as { stdout?: string };
      progress.note(`pgfeed: the build failed; pgfeed runs are skipped\n${e.stdout ?? String(err)}`);
      return false;
    }
  }
  return existsSync(cli);
}

function printTable(rows: Array<[string, string, string]>): void {
  const w0 = Math.max(8, ...rows.map((r) => r[0].length));
  const w1 = Math.max(6, ...rows.map((r) => r[1].length));
  const line = `+${'-'.repeat(w0 + 2)}+${'-'.repeat(w1 + 2)}+${'-'.repeat(Math.max(5, ...rows.map((r) => r[2].length)) + 2)}+`;
  const w2 = line.length - w0 - w1 - 10;
  const fmt = (r: [string, string, string]) => `| ${r[0].padEnd(w0)} | ${r[1].padEnd(w1)} | ${r[2].padStart(w2)} |`;
  console.log(line);
  console.log(fmt(['scenario', 'metric', 'value']));
  console.log(line);
  let prev = '';
  for (const r of rows) {
    console.log(fmt([r[0] === prev ? '' : r[0], r[1], r[2]]));
    prev = r[0];
  }
  console.log(line);
}

export async function runBench(scenarios: Scenario<any>[], argv = process.argv.slice(2), only?: ScenarioName): Promise<void> {
  const opts = parseOptions(argv, only);
  const chosen = scenarios.filter((s) => opts.scenarios.includes(s.name));
  const progress = new Progress(chosen.reduce((n, s) => n + s.steps(opts), 0));
  const started = performance.now();
  progress.step('starting embedded Postgres');
  const pgfeed = await ensureDaemon(progress);
  const db = await BenchDb.start();
  const summary: Summary = loadSummary();
  summary.machine = machine();
  summary.when = new Date().toISOString();
  summary.full = opts.full;
  const table: Array<[string, string, string]> = [];
  let failed = false;
  try {
    for (const s of chosen) {
      let r: object | string;
      try {
        r = await s.run({ opts, db, progress, pgfeed });
      } catch (err) {
        failed = true;
        r = `failed: ${err instanceof Error ? err.message : String(err)}`;
        progress.note(`${s.name}: ${r}`);
      }
      if (typeof r === 'string') {
        table.push([s.name, 'skipped', r.length > 60 ? r.slice(0, 57) + '...' : r]);
        // Zeros and the reason, never the figures of an earlier run.
        const empty = emptySummary() as unknown as Record<string, object>;
        (summary as unknown as Record<string, unknown>)[s.name] = { ...empty[s.name], skipped: r };
        writeSummary(summary);
        continue;
      }
      (summary as unknown as Record<string, unknown>)[s.name] = r;
      if (s.topLevel) Object.assign(summary, s.topLevel(r));
      for (const [k, v] of s.table(r)) table.push([s.name, k, v]);
      if (s.charts) {
        const c = s.charts(r);
        writeResultFile(`${s.name}.svg`, renderCharts(c.charts, c.caption));
      }
      // Written after every scenario: a late failure keeps the earlier figures.
      writeSummary(summary);
    }
  } finally {
    progress.close();
    await db.close();
  }
  const file = writeSummary(summary);
  printTable(table);
  console.log(`\n${summary.machine}\n${opts.full ? 'full' : 'default'} scale, ${((performance.now() - started) / 1000).toFixed(0)} s; ${path.relative(process.cwd(), file)} and one SVG per scenario in ${path.relative(process.cwd(), path.dirname(file))}/`);
  if (failed) process.exitCode = 1;
}

/** True when the module at `url` is the script node was started with. */
export function isMain(url: string): boolean {
  return process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(url);
}
