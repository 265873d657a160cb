// capture: what pgfeed's triggers cost writers. The measurement itself lives
// in bench/capture.bench.ts (npm run bench:capture); the runner calls its
// runCapture() (which starts its own Postgres with durable settings, since a
// commit's cost is what it measures), at reduced sizes unless --full. A
// script without runCapture() is run as a process against a fresh bench
// database, and its ratios are read from its output. Without the file the
// scenario is skipped with a message.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Scenario } from './runner.js';
import { RESULTS_DIR, round } from './summary.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCRIPT = path.join(ROOT, 'bench/capture.bench.ts');
const KEYS = ['single_row_ratio', 'bulk_ratio', 'concurrent_ratio'] as const;

// Default scale: about 20 s instead of about 3 minutes.
const REDUCED = { singleRowTx: 600, rounds: 3, bulkReps: 3, concurrentMs: 1500, concurrentRounds: 2 };

type RunCapture = (o: Record<string, unknown>) => Promise<Record<string, unknown>>;

export interface CaptureResult {
  single_row_ratio: number;
  bulk_ratio: number;
  concurrent_ratio: number;
  [extra: string]: unknown;
}

/**
 * Finds the three ratios in whatever shape the script reports them: a JSON
 * line, its own section of summary.json written since `since` (when given),
 * or `key=value` text.
 */
function findRatios(stdout: string, since?: number): CaptureResult | null {
  const pick = (o: unknown): CaptureResult | null => {
    if (!o || typeof o !== 'object') return null;
    const r = o as Record<string, unknown>;
    if (KEYS.every((k) => typeof r[k] === 'number')) return { ...r } as CaptureResult;
    for (const v of Object.values(r)) {
      const inner = pick(v);
      if (inner) return inner;
    }
    return null;
  };
  for (const line of stdout.split('\n').reverse()) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    try {
      const found = pick(JSON.parse(t));
      if (found) return found;
    } catch {
      // Not a JSON line.
    }
  }
  // The script may have written its section of summary.json itself.
  const file = path.join(RESULTS_DIR, 'summary.json');
  if (since !== undefined && existsSync(file) && statSync(file).mtimeMs >= since) {
    try {
      const found = pick((JSON.parse(readFileSync(file, 'utf8')) as { capture?: unknown }).capture);
      if (found && KEYS.some((k) => found[k] !== 0)) return found;
    } catch {
      // Unreadable: fall through.
    }
  }
  const fromText: Partial<Record<(typeof KEYS)[number], number>> = {};
  for (const k of KEYS) {
    const m = new RegExp(`${k}["']?\\s*[:=]\\s*([0-9.]+)`).exec(stdout);
    if (m) fromText[k] = Number(m[1]);
  }
  return KEYS.every((k) => fromText[k] !== undefined) ? (fromText as CaptureResult) : null;
}

export const capture: Scenario<CaptureResult> = {
  name: 'capture',
  steps: () => 1,
  async run(ctx) {
    if (!existsSync(SCRIPT)) {
      ctx.progress.tick();
      return 'bench/capture.bench.ts is not in this tree; nothing to run';
    }
    const mod = (await import(pathToFileURL(SCRIPT).href)) as { runCapture?: RunCapture };
    if (typeof mod.runCapture === 'function') {
      ctx.progress.step('capture: runCapture() from bench/capture.bench.ts');
      const full = await mod.runCapture({ ...(ctx.opts.full ? {} : REDUCED), log: (line: string) => ctx.progress.step(`capture: ${line.replace(/^#\s*/, '')}`) });
      ctx.progress.tick();
      const r = findRatios(JSON.stringify(full));
      if (!r) return 'runCapture() returned no single_row_ratio/bulk_ratio/concurrent_ratio';
      for (const k of KEYS) r[k] = round(r[k], 3);
      return { ...r, scale: ctx.opts.full ? 'runCapture() defaults' : REDUCED };
    }
    const database = await ctx.db.fresh();
    try {
      ctx.progress.step('capture: npm run bench:capture');
      const since = Date.now();
      const args = ['--import', 'tsx', SCRIPT, ...(ctx.opts.full ? ['--full'] : [])];
      const timeoutMs = ctx.opts.full ? 900_000 : 180_000;
      const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const p = spawn(process.execPath, args, {
          cwd: ROOT,
          env: { ...process.env, DATABASE_URL: database.url, PGFEED_BENCH_DATABASE_URL: database.url },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        p.stdout.on('data', (b: Buffer) => (out += b.toString()));
        p.stderr.on('data', (b: Buffer) => (err += b.toString()));
        const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
        p.on('close', (c) => {
          clearTimeout(t);
          resolve({ code: c, stdout: out, stderr: err });
        });
      });
      ctx.progress.tick();
      const r = findRatios(stdout, since);
      if (!r) {
        const why = code === 0 ? 'printed no single_row_ratio/bulk_ratio/concurrent_ratio' : `exited with ${code}: ${stderr.trim().split('\n').slice(-3).join(' ')}`;
        return `bench/capture.bench.ts ${why}`;
      }
      for (const k of KEYS) r[k] = round(r[k], 3);
      return r;
    } finally {
      await database.drop();
    }
  },
  table(r) {
    return [
      ['single-row insert', `${r.single_row_ratio}x the untracked throughput`],
      ['bulk insert', `${r.bulk_ratio}x`],
      ['concurrent writers', `${r.concurrent_ratio}x`],
    ];
  },
  charts(r) {
    return {
      charts: [
        {
          kind: 'bar',
          title: 'writer cost with capture (tracked / untracked)',
          yLabel: 'ratio',
          bars: [
            { label: 'single row', value: r.single_row_ratio },
            { label: 'bulk', value: r.bulk_ratio },
            { label: 'concurrent', value: r.concurrent_ratio },
          ],
        },
      ],
      caption: 'capture: bench/capture.bench.ts',
    };
  },
};
