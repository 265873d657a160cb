// fanout: N streams over P projects while writers commit R events/s.
// Each stream count is run against pgfeed and, side by side on the same
// machine and load, the raw uWS ceiling and the naive per-subscriber poller.
// Figures: deliveries/s, commit→client latency, daemon CPU and RSS, DB
// queries per change, and the exactly-once/in-order check of every stream.

import type { BenchDatabase } from './lib/bench-db.js';
import type { ClientSpec } from './lib/load-client.js';
import { LoadGenerator } from './lib/load-generator.js';
import { histogramDelta, histogramQuantile, histogramsByLabel, metricByLabel, scrapeMetric, scrapeText, sumMetric } from './lib/metrics-scrape.js';
import { ProcMonitor } from './lib/proc-stats.js';
import { isMain, runBench, type BenchContext, type Scenario } from './lib/runner.js';
import { ServerProcess, type ServerKind } from './lib/server-process.js';
import { round, type FanoutSummary, type LatencyEntry, type SaturationSummary } from './lib/summary.js';
import { sleep } from '../test/helpers/wait.js';
import { expectedOrder, Writers } from './lib/writers.js';

export interface FanoutRow {
  server: ServerKind;
  streams: number;
  projects: number;
  rate: number;
  committed: number;
  deliveries: number;
  expected_deliveries: number;
  deliveries_per_s: number;
  p50_ms: number;
  p99_ms: number;
  p999_ms: number;
  cpu_percent: number;
  generator_cpu_percent: number;
  rss_mb: number;
  db_queries: number;
  db_queries_per_s: number;
  db_queries_per_change: number;
  lost: number;
  duplicated: number;
  misordered: number;
  open_failures: number;
  drained: boolean;
  /** The server process ended by itself during the run (e.g. out of memory). */
  server_exited?: string;
  subscribers_when_writing_stopped?: Record<string, number>;
  tail_lag_s_when_writing_stopped?: number;
  /** pgfeed: its own per-read step timings over the measured window (pgfeed_delivery_step_seconds). */
  steps?: Record<string, StepFigures>;
}

/** One step of pgfeed_delivery_step_seconds: reads observed, and their mean and quantiles in ms. */
export interface StepFigures {
  reads: number;
  mean_ms: number;
  p50_ms: number;
  p99_ms: number;
}

const STEP_METRIC = 'pgfeed_delivery_step_seconds';
const STEP_ORDER = ['notify', 'wait', 'read', 'encode', 'hub', 'write', 'total', 'oldest'];

/** The step timings observed between two scrapes of pgfeed's /metrics. */
function stepFigures(before: string, after: string): Record<string, StepFigures> {
  const b = histogramsByLabel(before, STEP_METRIC, 'step');
  const a = histogramsByLabel(after, STEP_METRIC, 'step');
  const out: Record<string, StepFigures> = {};
  for (const step of STEP_ORDER) {
    const h = a.get(step);
    if (!h) continue;
    const d = histogramDelta(h, b.get(step));
    out[step] = {
      reads: d.count,
      mean_ms: round((d.sum / Math.max(1, d.count)) * 1000, 3),
      p50_ms: round(histogramQuantile(d, 0.5) * 1000, 3),
      p99_ms: round(histogramQuantile(d, 0.99) * 1000, 3),
    };
  }
  return out;
}

const projectNames = (p: number) => Array.from({ length: p }, (_, i) => `p${i}`);

/** One fanout run against one server. Everything it starts is closed before it returns. */
export async function fanoutRun(
  ctx: BenchContext,
  server: ServerKind,
  streams: number,
  load: { rate: number; projects: number; env?: Record<string, string>; prepare?: (databaseUrl: string) => Promise<void> } = ctx.opts,
): Promise<FanoutRow> {
  const { opts, db } = ctx;
  const projects = Math.min(load.projects, streams);
  const names = projectNames(projects);
  let database: BenchDatabase | null = null;
  let srv: ServerProcess | null = null;
  let gen: LoadGenerator | null = null;
  let writers: Writers | null = null;
  let mon: ProcMonitor | null = null;
  let genMons: ProcMonitor[] = [];
  try {
    if (server !== 'raw') database = await db.fresh();
    // The database as the daemon's settings want it (the doorbell's notify setting).
    if (database && load.prepare) await load.prepare(database.url);
    srv = await ServerProcess.start(server, { databaseUrl: database?.url, env: load.env });
    gen = new LoadGenerator({ host: '127.0.0.1', port: srv.port, totalStreams: streams });
    const specs: ClientSpec[] = Array.from({ length: streams }, (_, i) => {
      const project = names[i % projects];
      return { project, path: server === 'raw' ? `/v1/events?project=${project}` : `/v1/events?project=${project}&after=0` };
    });
    const opened = await gen.open(specs);
    await sleep(500);
    await gen.measure();
    mon = new ProcMonitor(srv.pid);
    // The generator shares the machine: its CPU tells whether it, rather
    // than the server, was the limit.
    genMons = gen.pids.map((pid) => new ProcMonitor(pid));
    const q0 = await scrapeMetric(srv.url, srv.queryMetric);
    const stepsBefore = server === 'pgfeed' ? await scrapeText(srv.url) : '';
    const t0 = Date.now();
    let committed: number;
    let expected: Record<string, number[]>;
    if (server === 'raw') {
      await fetch(`${srv.url}/control/start?rate=${load.rate}&projects=${projects}`);
      await sleep(opts.duration * 1000);
      const { emitted } = (await (await fetch(`${srv.url}/control/stop`)).json()) as { emitted: number };
      committed = emitted;
      expected = Object.fromEntries(names.map((n) => [n, [] as number[]]));
      for (let seq = 1; seq <= emitted; seq++) expected[names[(seq - 1) % projects]].push(seq);
    } else {
      writers = new Writers(database!.url, { rate: load.rate, projects });
      await writers.start();
      await sleep(opts.duration * 1000);
      committed = (await writers.stop()).committed;
      expected = await expectedOrder(database!.url, names);
    }
    const t1 = Date.now();
    // pgfeed's subscriber states as writing stops: paused streams (socket
    // backpressure) explain a throughput or latency gap to raw.
    const text = server === 'pgfeed' ? await scrapeText(srv.url) : '';
    const states = server === 'pgfeed' ? metricByLabel(text, 'pgfeed_subscribers', 'state') : undefined;
    const tailLag = server === 'pgfeed' ? sumMetric(text, 'pgfeed_tail_lag_seconds') : undefined;
    // Drain: a server that cannot keep up (naive) is measured as it is, and
    // what it never delivered is lost.
    const { drained, expected: expectedDeliveries } = await gen.drain(expected, { timeoutMs: Math.max(10_000, opts.duration * 2000), stallMs: 3000 });
    const st = await gen.stats();
    const q1 = await scrapeMetric(srv.url, srv.queryMetric);
    const steps = server === 'pgfeed' ? stepFigures(stepsBefore, await scrapeText(srv.url)) : undefined;
    const proc = mon.result();
    const genCpu = genMons.reduce((a, m) => a + m.result().cpuPercent, 0);
    const check = await gen.check(expected);
    const crashed = srv.exitedEarly;
    const end = Math.max(t1, st.lastEventAt);
    const h = check.histogram;
    return {
      server,
      streams,
      projects,
      rate: load.rate,
      committed,
      deliveries: st.deliveries,
      expected_deliveries: expectedDeliveries,
      deliveries_per_s: round(st.deliveries / ((end - t0) / 1000), 0),
      p50_ms: round(h.getValueAtPercentile(50) / 1000),
      p99_ms: round(h.getValueAtPercentile(99) / 1000),
      p999_ms: round(h.getValueAtPercentile(99.9) / 1000),
      cpu_percent: round(proc.cpuPercent, 1),
      generator_cpu_percent: round(genCpu, 1),
      rss_mb: round(proc.peakRssMb, 1),
      db_queries: q1 - q0,
      db_queries_per_s: round((q1 - q0) / ((Date.now() - t0) / 1000), 1),
      db_queries_per_change: round((q1 - q0) / Math.max(1, committed), 4),
      lost: check.lost,
      duplicated: check.duplicated,
      misordered: check.misordered,
      open_failures: opened.failed,
      drained,
      ...(crashed ? { server_exited: crashed } : {}),
      ...(states ? { subscribers_when_writing_stopped: states, tail_lag_s_when_writing_stopped: round(tailLag ?? 0, 3) } : {}),
      ...(steps ? { steps } : {}),
    };
  } finally {
    mon?.close();
    for (const m of genMons) m.close();
    await gen?.close();
    await writers?.close();
    await srv?.close();
    await database?.drop();
  }
}

function servers(ctx: BenchContext, streams: number): ServerKind[] {
  const { servers, naiveMaxStreams } = ctx.opts;
  return servers.filter((k) => (k === 'pgfeed' ? ctx.pgfeed : k === 'naive' ? streams <= naiveMaxStreams : true));
}

export interface FanoutResult extends FanoutSummary {
  /** The saturation runs' deliveries/s: every server at the same stream count and offered rate. */
  saturation: SaturationSummary | null;
  series: FanoutRow[];
  /** The saturation runs: the most each server delivered under an offered load above what naive sustains. */
  max: FanoutRow[];
}

export const fanout: Scenario<FanoutResult> = {
  name: 'fanout',
  steps: (o) => (o.streams.length + 1) * o.servers.length,
  async run(ctx) {
    const rows: FanoutRow[] = [];
    for (const n of ctx.opts.streams) {
      for (const kind of servers(ctx, n)) {
        ctx.progress.step(`fanout: ${kind}, ${n} streams, ${ctx.opts.rate} events/s for ${ctx.opts.duration} s`);
        rows.push(await fanoutRun(ctx, kind, n));
        ctx.progress.tick();
      }
    }
    // Saturation: at a fixed rate every server keeps up and deliveries/s is
    // the offered load. This run offers more than naive can serve, to show
    // the most each server delivers.
    const sat = ctx.opts.saturation;
    const max: FanoutRow[] = [];
    for (const kind of servers(ctx, sat.streams)) {
      ctx.progress.step(`fanout: ${kind} at saturation, ${sat.streams} streams over ${sat.projects} projects, ${sat.rate} events/s`);
      max.push(await fanoutRun(ctx, kind, sat.streams, sat));
      ctx.progress.tick();
    }
    const top = Math.max(...ctx.opts.streams);
    const pick = (k: ServerKind, max = top) =>
      rows.filter((r) => r.server === k && r.streams <= max).sort((a, b) => b.streams - a.streams)[0];
    const main = pick(ctx.pgfeed ? 'pgfeed' : 'raw')!;
    const raw = pick('raw');
    const naive = pick('naive');
    const pgfeedRow = ctx.pgfeed ? main : undefined;
    return {
      streams: main.streams,
      projects: main.projects,
      rate: main.rate,
      deliveries_per_s: pgfeedRow?.deliveries_per_s ?? 0,
      p50_ms: pgfeedRow?.p50_ms ?? 0,
      p99_ms: pgfeedRow?.p99_ms ?? 0,
      p999_ms: pgfeedRow?.p999_ms ?? 0,
      daemon_rss_mb: pgfeedRow?.rss_mb ?? 0,
      db_queries_per_change: pgfeedRow?.db_queries_per_change ?? 0,
      lost: pgfeedRow?.lost ?? 0,
      duplicated: pgfeedRow?.duplicated ?? 0,
      misordered: pgfeedRow?.misordered ?? 0,
      daemon_cpu_percent: pgfeedRow?.cpu_percent ?? 0,
      pgfeed_measured: ctx.pgfeed,
      raw: raw ? { deliveries_per_s: raw.deliveries_per_s, p99_ms: raw.p99_ms, streams: raw.streams } : { deliveries_per_s: 0, p99_ms: 0 },
      naive: naive
        ? { deliveries_per_s: naive.deliveries_per_s, p99_ms: naive.p99_ms, db_queries_per_change: naive.db_queries_per_change, streams: naive.streams, lost: naive.lost, misordered: naive.misordered }
        : { deliveries_per_s: 0, p99_ms: 0, db_queries_per_change: 0 },
      ratios: ratios(rows),
      max_ratios: ratios(max)[0] ?? null,
      saturation: saturation(max),
      series: rows,
      max,
    };
  },
  table(r) {
    const out: Array<[string, string]> = [];
    for (const row of [...r.series, ...r.max]) {
      const sat = r.max.includes(row) ? `, saturation (${row.rate} events/s over ${row.projects} projects)` : '';
      out.push([
        `${row.server} @ ${row.streams} streams${sat}`,
        `${row.deliveries_per_s} deliveries/s; latency p50 ${row.p50_ms}, p99 ${row.p99_ms}, p99.9 ${row.p999_ms} ms`,
      ]);
      out.push([
        '',
        `cpu ${row.cpu_percent}% (generator ${row.generator_cpu_percent}%), rss ${row.rss_mb} MB, ${row.db_queries_per_s} queries/s = ${row.db_queries_per_change}/change; lost ${row.lost}, dup ${row.duplicated}, misordered ${row.misordered}${row.drained ? '' : ' (not drained)'}${row.open_failures ? `, ${row.open_failures} streams refused` : ''}${row.server_exited ? `; server ended by itself: ${row.server_exited}` : ''}`,
      ]);
      if (row.subscribers_when_writing_stopped) {
        const st = Object.entries(row.subscribers_when_writing_stopped).map(([k, v]) => `${k} ${v}`).join(', ');
        out.push(['', `when writing stopped: subscribers ${st}; tail lag ${row.tail_lag_s_when_writing_stopped ?? 0} s`]);
      }
      if (row.steps && Object.keys(row.steps).length) {
        const st = Object.entries(row.steps).map(([k, v]) => `${k} ${v.p50_ms}/${v.p99_ms}`).join(', ');
        out.push(['', `steps per read, p50/p99 ms: ${st}`]);
      }
    }
    for (const x of r.ratios as Ratio[]) {
      out.push([`ratios @ ${x.streams} streams`, x.text]);
    }
    const m = r.max_ratios as Ratio | null;
    if (m) out.push([`ratios at saturation`, m.text]);
    return out.map(([a, b]) => [a, b] as [string, string]);
  },
  topLevel(r) {
    return { latency: latency(r.series) };
  },
  charts(r) {
    const kinds = [...new Set(r.series.map((x) => x.server))];
    const series = (f: (x: FanoutRow) => number) =>
      kinds.map((k) => ({ name: k, points: r.series.filter((x) => x.server === k).map((x) => [x.streams, f(x)] as [number, number]) }));
    return {
      charts: [
        { kind: 'line', title: 'deliveries/s', xLabel: 'streams', yLabel: 'deliveries/s', logX: true, series: series((x) => x.deliveries_per_s) },
        { kind: 'line', title: 'p99 commit→client latency', xLabel: 'streams', yLabel: 'ms', logX: true, series: series((x) => x.p99_ms) },
        { kind: 'line', title: 'p50 latency', xLabel: 'streams', yLabel: 'ms', logX: true, series: series((x) => x.p50_ms) },
        { kind: 'bar', title: `most deliveries/s: ${r.max[0]?.streams ?? 0} streams, ${r.max[0]?.rate ?? 0} events/s offered`, yLabel: 'deliveries/s', bars: r.max.map((x) => ({ label: x.server, value: x.deliveries_per_s })) },
        { kind: 'line', title: 'DB queries per change', xLabel: 'streams', yLabel: 'queries/change', logX: true, series: series((x) => x.db_queries_per_change).filter((s) => s.name !== 'raw') },
      ],
      caption: `fanout: ${r.projects} projects, ${r.rate} events/s, ${r.series[0]?.streams ?? 0}..${r.streams} streams`,
    };
  },
};

interface Ratio {
  streams: number;
  text: string;
  pgfeed_over_raw_deliveries?: number;
  pgfeed_over_raw_p99?: number;
  pgfeed_over_naive_deliveries?: number;
  naive_over_pgfeed_queries?: number;
}

function ratios(rows: FanoutRow[]): Ratio[] {
  const out: Ratio[] = [];
  for (const n of [...new Set(rows.map((r) => r.streams))]) {
    const get = (k: ServerKind) => rows.find((r) => r.server === k && r.streams === n);
    const p = get('pgfeed');
    const raw = get('raw');
    const naive = get('naive');
    if (!p) continue;
    const x: Ratio = { streams: n, text: '' };
    const parts: string[] = [];
    if (raw) {
      x.pgfeed_over_raw_deliveries = round(p.deliveries_per_s / Math.max(1, raw.deliveries_per_s));
      x.pgfeed_over_raw_p99 = round(p.p99_ms / Math.max(0.001, raw.p99_ms));
      parts.push(`pgfeed/raw deliveries ${x.pgfeed_over_raw_deliveries}x, p99 ${x.pgfeed_over_raw_p99}x`);
    }
    if (naive) {
      x.pgfeed_over_naive_deliveries = round(p.deliveries_per_s / Math.max(1, naive.deliveries_per_s));
      x.naive_over_pgfeed_queries = round(naive.db_queries_per_change / Math.max(1e-6, p.db_queries_per_change), 1);
      parts.push(`pgfeed/naive deliveries ${x.pgfeed_over_naive_deliveries}x, naive/pgfeed queries per change ${x.naive_over_pgfeed_queries}x`);
    }
    x.text = parts.join('; ');
    out.push(x);
  }
  return out;
}

if (isMain(import.meta.url)) await runBench([fanout], process.argv.slice(2), 'fanout');

/** pgfeed and raw at each stream count both ran at: the latency figures of summary.json. */
function latency(rows: FanoutRow[]): LatencyEntry[] {
  const out: LatencyEntry[] = [];
  for (const p of rows.filter((r) => r.server === 'pgfeed')) {
    const raw = rows.find((r) => r.server === 'raw' && r.streams === p.streams && r.rate === p.rate);
    if (!raw) continue;
    out.push({ streams: p.streams, rate: p.rate, pgfeed_p50_ms: p.p50_ms, pgfeed_p99_ms: p.p99_ms, raw_p50_ms: raw.p50_ms, raw_p99_ms: raw.p99_ms });
  }
  return out;
}

/** The saturation runs, compared at their one stream count and rate (null unless all three servers ran). */
function saturation(max: FanoutRow[]): SaturationSummary | null {
  const get = (k: ServerKind) => max.find((r) => r.server === k);
  const [p, raw, naive] = [get('pgfeed'), get('raw'), get('naive')];
  if (!p || !raw || !naive) return null;
  return {
    streams: p.streams,
    rate: p.rate,
    pgfeed_deliveries_per_s: p.deliveries_per_s,
    raw_deliveries_per_s: raw.deliveries_per_s,
    naive_deliveries_per_s: naive.deliveries_per_s,
    pgfeed_over_naive_deliveries: round(p.deliveries_per_s / Math.max(1, naive.deliveries_per_s)),
  };
}
