// idle: hold N idle streams and measure what each costs the daemon in RSS.
// The raw uWS server holding the same streams is measured alongside, as the
// floor of what a socket costs in uWS.

import type { BenchDatabase } from './lib/bench-db.js';
import { LoadGenerator } from './lib/load-generator.js';
import { sampleProc } from './lib/proc-stats.js';
import { isMain, runBench, type BenchContext, type Scenario } from './lib/runner.js';
import { ServerProcess, type ServerKind } from './lib/server-process.js';
import { round } from './lib/summary.js';
import { sleep } from '../test/helpers/wait.js';

export interface IdleRow {
  server: ServerKind;
  streams: number;
  open: number;
  base_rss_mb: number;
  rss_mb: number;
  kb_per_stream: number;
}

async function idleRun(ctx: BenchContext, server: ServerKind, streams: number): Promise<IdleRow> {
  let database: BenchDatabase | null = null;
  let srv: ServerProcess | null = null;
  let gen: LoadGenerator | null = null;
  try {
    if (server !== 'raw') database = await ctx.db.fresh();
    srv = await ServerProcess.start(server, { databaseUrl: database?.url });
    // Let start-up allocations settle before the baseline.
    await sleep(1500);
    const base = sampleProc(srv.pid).rssKb;
    gen = new LoadGenerator({ host: '127.0.0.1', port: srv.port, totalStreams: streams });
    const projects = Math.min(ctx.opts.projects, streams);
    const opened = await gen.open(
      Array.from({ length: streams }, (_, i) => ({ project: `p${i % projects}`, path: `/v1/events?project=p${i % projects}&after=now` })),
      false,
    );
    // Held idle for a few seconds, so the figure is the steady state and not
    // the peak of the connection burst.
    await sleep(3000);
    const rss = sampleProc(srv.pid).rssKb;
    return {
      server,
      streams,
      open: opened.open,
      base_rss_mb: round(base / 1024, 1),
      rss_mb: round(rss / 1024, 1),
      kb_per_stream: round((rss - base) / Math.max(1, opened.open), 2),
    };
  } finally {
    await gen?.close();
    await srv?.close();
    await database?.drop();
  }
}

export interface IdleResult {
  streams: number;
  daemon_rss_mb: number;
  kb_per_stream: number;
  [extra: string]: unknown;
}

export const idle: Scenario<IdleResult> = {
  name: 'idle',
  steps: () => 2,
  async run(ctx) {
    const n = ctx.opts.idleStreams;
    const rows: IdleRow[] = [];
    for (const kind of [...(ctx.pgfeed ? (['pgfeed'] as const) : []), 'raw' as const]) {
      ctx.progress.step(`idle: ${kind}, ${n} streams`);
      rows.push(await idleRun(ctx, kind, n));
      ctx.progress.tick();
    }
    const p = rows.find((r) => r.server === 'pgfeed');
    const raw = rows.find((r) => r.server === 'raw')!;
    return {
      streams: n,
      daemon_rss_mb: p?.rss_mb ?? 0,
      kb_per_stream: p?.kb_per_stream ?? 0,
      open: p?.open ?? 0,
      baseline_rss_mb: p?.base_rss_mb ?? 0,
      pgfeed_measured: ctx.pgfeed,
      raw: { rss_mb: raw.rss_mb, kb_per_stream: raw.kb_per_stream, open: raw.open },
    };
  },
  table(r) {
    const raw = r.raw as IdleRow;
    return [
      ['streams held', `${r.open}/${r.streams}`],
      ['pgfeed RSS', `${r.daemon_rss_mb} MB (${r.baseline_rss_mb} MB before), ${r.kb_per_stream} KB/stream`],
      ['raw RSS', `${raw.rss_mb} MB, ${raw.kb_per_stream} KB/stream`],
    ];
  },
  charts(r) {
    const raw = r.raw as IdleRow;
    return {
      charts: [
        { kind: 'bar', title: `RSS with ${r.streams} idle streams`, yLabel: 'MB', bars: [{ label: 'pgfeed', value: r.daemon_rss_mb }, { label: 'raw', value: raw.rss_mb }] },
        { kind: 'bar', title: 'RSS per idle stream', yLabel: 'KB', bars: [{ label: 'pgfeed', value: r.kb_per_stream }, { label: 'raw', value: raw.kb_per_stream }] },
      ],
      caption: `idle: ${r.streams} streams held for 3 s`,
    };
  },
};

if (isMain(import.meta.url)) await runBench([idle], process.argv.slice(2), 'idle');
