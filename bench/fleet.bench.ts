// fleet: 1, 2, 4 and 8 replicas (daemon processes) on one database, each
// holding its share of a fixed total of streams, as replicas behind a load
// balancer do, while writers commit at a fixed rate. Run at two totals of
// streams, to show that the database's work per change grows with replicas
// and not with subscribers, and by how much per replica.
//
// The database's work is counted three ways over the same window: by
// Postgres itself (pg_stat_statements, the statements run in the bench
// database less the writers' and the bench's own), by the daemons
// (pgfeed_db_queries_total, summed over replicas), and as transactions
// (pg_stat_database). Backends report transactions up to 10 s late, but at
// once when they exit, so those are counted over each fleet's whole life,
// from before its start until its last connection closed.

import pg from 'pg';
import type { BenchDatabase } from './lib/bench-db.js';
import type { ClientSpec } from './lib/load-client.js';
import { LoadGenerator } from './lib/load-generator.js';
import { metricByLabel, scrapeText, sumMetric } from './lib/metrics-scrape.js';
import { ProcMonitor, sampleProc } from './lib/proc-stats.js';
import { isMain, runBench, type BenchContext, type Scenario } from './lib/runner.js';
import { ServerProcess } from './lib/server-process.js';
import { round, type FleetSummary } from './lib/summary.js';
import { sleep } from '../test/helpers/wait.js';
import { expectedOrder, Writers } from './lib/writers.js';

export interface FleetRow {
  replicas: number;
  streams: number;
  streams_per_replica: number;
  projects: number;
  rate: number;
  committed: number;
  deliveries: number;
  expected_deliveries: number;
  deliveries_per_s: number;
  p50_ms: number;
  p99_ms: number;
  /** Statements Postgres ran for the daemons in the window (pg_stat_statements). */
  db_queries: number;
  db_queries_per_change: number;
  db_queries_per_change_per_replica: number;
  /** The same, as the daemons count them (pgfeed_db_queries_total summed over replicas), by kind. */
  metric_queries: number;
  metric_queries_per_change: number;
  metric_queries_by_kind: Record<string, number>;
  /** Transactions the writers committed: one per statement. */
  writer_statements: number;
  /** The statements Postgres ran most often for the daemons in the window. */
  top_statements: Array<{ calls: number; query: string }>;
  /** Queries the daemons made while the streams were opened, per stream opened: timed ones only, unless opening a stream costs a query. */
  open_queries_per_stream: number;
  /** Most connections seen at once, by application_name (pgfeed:query, pgfeed:listen), over all replicas. */
  connections: Record<string, number>;
  connections_per_replica: number;
  replica_rss_mb: number[];
  replica_base_rss_mb: number[];
  replica_cpu_percent: number[];
  daemon_cpu_percent_total: number;
  generator_cpu_percent: number;
  lost: number;
  duplicated: number;
  misordered: number;
  open_failures: number;
  drained: boolean;
  server_exited?: string;
}

// Many projects, as a fleet serves: each event goes to a few streams, so the
// delivery work per change stays small and the reads per change show.
const FLEET_PROJECTS = 100;

const projectNames = (p: number) => Array.from({ length: p }, (_, i) => `p${i}`);

// Statements in the bench database that are not the daemons': the writers'
// INSERT and the bench's own reads of the committed order.
const NOT_THE_DAEMONS = [/INSERT INTO public\.orders/, /^SELECT seq FROM pgfeed\.change_log WHERE project = \$1/];

/** The bench's view of Postgres, from a connection to another database so that its own transactions are not counted. */
class DbCounters {
  private constructor(
    private readonly c: pg.Client,
    private readonly database: string,
  ) {}

  static async open(adminUrl: string, database: string): Promise<DbCounters> {
    const c = new pg.Client({ connectionString: adminUrl, application_name: 'pgfeed-bench:counters' });
    await c.connect();
    await c.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    return new DbCounters(c, database);
  }

  /** Calls of each statement run in the bench database, by query id. */
  async statements(): Promise<Map<string, { calls: number; query: string }>> {
    const { rows } = await this.c.query<{ id: string; calls: string; query: string }>(
      `SELECT s.queryid::text AS id, s.calls::text AS calls, s.query FROM pg_stat_statements s
       JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1`,
      [this.database],
    );
    return new Map(rows.filter((r) => !NOT_THE_DAEMONS.some((re) => re.test(r.query))).map((r) => [r.id, { calls: Number(r.calls), query: r.query }]));
  }

  async xacts(): Promise<number> {
    const { rows } = await this.c.query<{ n: string }>('SELECT (xact_commit + xact_rollback)::text AS n FROM pg_stat_database WHERE datname = $1', [this.database]);
    return Number(rows[0]?.n ?? 0);
  }

  /** Once every backend that ran them has exited: the count stops moving. */
  async settledXacts(): Promise<number> {
    let last = await this.xacts();
    for (let i = 0; i < 20; i++) {
      await sleep(250);
      const now = await this.xacts();
      if (now === last) return now;
      last = now;
    }
    return last;
  }

  async connections(): Promise<Record<string, number>> {
    const { rows } = await this.c.query<{ app: string; n: number }>(
      `SELECT application_name AS app, count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'pgfeed:%' GROUP BY 1`,
      [this.database],
    );
    return Object.fromEntries(rows.map((r) => [r.app, r.n]));
  }

  close(): Promise<void> {
    return this.c.end();
  }
}

function statementDelta(a: Map<string, { calls: number; query: string }>, b: Map<string, { calls: number; query: string }>) {
  const out: Array<{ calls: number; query: string }> = [];
  for (const [id, s] of b) {
    const calls = s.calls - (a.get(id)?.calls ?? 0);
    if (calls > 0) out.push({ calls, query: s.query.replace(/\s+/g, ' ').slice(0, 100) });
  }
  return out.sort((x, y) => y.calls - x.calls);
}

async function queriesByKind(servers: ServerProcess[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const text of await Promise.all(servers.map((s) => scrapeText(s.url)))) {
    for (const [k, v] of Object.entries(metricByLabel(text, 'pgfeed_db_queries_total', 'kind'))) out[k] = (out[k] ?? 0) + v;
  }
  return out;
}

const total = (m: Record<string, number>) => Object.values(m).reduce((a, b) => a + b, 0);

function minus(b: Record<string, number>, a: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(b).map(([k, v]) => [k, v - (a[k] ?? 0)]));
}

/** One total of streams over `servers`: each replica gets a contiguous share, with every project in it. */
async function fleetLoad(ctx: BenchContext, database: BenchDatabase, counters: DbCounters, servers: ServerProcess[], streams: number): Promise<FleetRow> {
  const { opts } = ctx;
  const projects = Math.min(FLEET_PROJECTS, streams);
  const names = projectNames(projects);
  const n = servers.length;
  let gen: LoadGenerator | null = null;
  let writers: Writers | null = null;
  const mons: ProcMonitor[] = [];
  let sampler: NodeJS.Timeout | undefined;
  try {
    // Streams open at the log's end (after=now): the events committed before,
    // by an earlier load on the same replicas, are not owed to them.
    const before = await expectedOrder(database.url, names);
    const seen = new Set(Object.values(before).flat());
    const baseRss = servers.map((s) => sampleProc(s.pid).rssKb / 1024);
    gen = new LoadGenerator({ host: '127.0.0.1', port: servers[0].port, totalStreams: streams });
    const specs: ClientSpec[] = Array.from({ length: streams }, (_, i) => {
      const project = names[i % projects];
      return { project, path: `/v1/events?project=${project}&after=now`, port: servers[Math.floor((i * n) / streams)].port };
    });
    const q0 = await queriesByKind(servers);
    const opened = await gen.open(specs);
    await sleep(500);
    const q1 = await queriesByKind(servers);
    await gen.measure();
    for (const s of servers) mons.push(new ProcMonitor(s.pid));
    const genMons = gen.pids.map((pid) => new ProcMonitor(pid));
    mons.push(...genMons);
    const connections: Record<string, number> = {};
    const sample = async () => {
      for (const [app, k] of Object.entries(await counters.connections())) connections[app] = Math.max(connections[app] ?? 0, k);
    };
    await sample();
    sampler = setInterval(() => void sample().catch(() => {}), 500);
    const s0 = await counters.statements();
    const t0 = Date.now();
    writers = new Writers(database.url, { rate: opts.fleet.rate, projects });
    await writers.start();
    await sleep(opts.duration * 1000);
    const { committed, statements } = await writers.stop();
    const t1 = Date.now();
    const all = await expectedOrder(database.url, names);
    const expected = Object.fromEntries(Object.entries(all).map(([p, seqs]) => [p, seqs.filter((s) => !seen.has(s))]));
    const drain = await gen.drain(expected, { timeoutMs: Math.max(10_000, opts.duration * 2000), stallMs: 3000 });
    clearInterval(sampler);
    const s1 = await counters.statements();
    const q2 = await queriesByKind(servers);
    const st = await gen.stats();
    const replicaStats = mons.slice(0, n).map((m) => m.result());
    const genCpu = genMons.reduce((a, m) => a + m.result().cpuPercent, 0);
    const check = await gen.check(expected);
    const h = check.histogram;
    const statementsRun = statementDelta(s0, s1);
    const dbQueries = statementsRun.reduce((a, s) => a + s.calls, 0);
    const metric = minus(q2, q1);
    const perChange = dbQueries / Math.max(1, committed);
    const crashed = servers.map((s) => s.exitedEarly).find((e) => e !== null);
    const cpu = replicaStats.map((r) => round(r.cpuPercent, 1));
    return {
      replicas: n,
      streams,
      streams_per_replica: round(streams / n, 1),
      projects,
      rate: opts.fleet.rate,
      committed,
      deliveries: st.deliveries,
      expected_deliveries: drain.expected,
      deliveries_per_s: round(st.deliveries / ((Math.max(t1, st.lastEventAt) - t0) / 1000), 0),
      p50_ms: round(h.getValueAtPercentile(50) / 1000),
      p99_ms: round(h.getValueAtPercentile(99) / 1000),
      db_queries: dbQueries,
      db_queries_per_change: round(perChange, 3),
      db_queries_per_change_per_replica: round(perChange / n, 3),
      metric_queries: total(metric),
      metric_queries_per_change: round(total(metric) / Math.max(1, committed), 3),
      metric_queries_by_kind: metric,
      writer_statements: statements,
      top_statements: statementsRun.slice(0, 6),
      open_queries_per_stream: round(total(minus(q1, q0)) / Math.max(1, opened.open), 4),
      connections,
      connections_per_replica: round(total(connections) / n, 1),
      replica_rss_mb: replicaStats.map((r) => round(r.peakRssMb, 1)),
      replica_base_rss_mb: baseRss.map((r) => round(r, 1)),
      replica_cpu_percent: cpu,
      daemon_cpu_percent_total: round(cpu.reduce((a, b) => a + b, 0), 1),
      generator_cpu_percent: round(genCpu, 1),
      lost: check.lost,
      duplicated: check.duplicated,
      misordered: check.misordered,
      open_failures: opened.failed,
      drained: drain.drained,
      ...(crashed ? { server_exited: crashed } : {}),
    };
  } finally {
    clearInterval(sampler);
    for (const m of mons) m.close();
    await gen?.close();
    await writers?.close();
  }
}

/** Least squares y = a + b·x. */
function fitLine(points: Array<[number, number]>): { a: number; b: number } {
  const k = points.length;
  const mx = points.reduce((s, p) => s + p[0], 0) / k;
  const my = points.reduce((s, p) => s + p[1], 0) / k;
  const sxx = points.reduce((s, p) => s + (p[0] - mx) ** 2, 0);
  const b = sxx > 0 ? points.reduce((s, p) => s + (p[0] - mx) * (p[1] - my), 0) / sxx : 0;
  return { a: my - b * mx, b };
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

export interface FleetResult extends FleetSummary {
  series: FleetRow[];
}

export const fleet: Scenario<FleetResult> = {
  name: 'fleet',
  steps: (o) => o.fleet.replicas.length * o.fleet.streams.length,
  async run(ctx) {
    if (!ctx.pgfeed) return 'the pgfeed daemon could not be built';
    const { replicas, streams } = ctx.opts.fleet;
    const totals = [...streams].sort((a, b) => a - b);
    const rows: FleetRow[] = [];
    // Over each fleet's whole life. Transactions are more than statements:
    // a listening backend runs one to read the notifications it is sent.
    const xacts: Array<{ replicas: number; changes: number; xacts: number; statements: number; per_change: number; statements_per_change: number }> = [];
    for (const n of replicas) {
      const database = await ctx.db.fresh();
      let servers: ServerProcess[] = [];
      const counters = await DbCounters.open(ctx.db.url('postgres'), database.name);
      const x0 = await counters.xacts();
      const whole0 = await counters.statements();
      const mine: FleetRow[] = [];
      try {
        // Started together, as a fleet comes up: their migrations race under the advisory lock.
        const started = await Promise.allSettled(Array.from({ length: n }, () => ServerProcess.start('pgfeed', { databaseUrl: database.url })));
        servers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
        const failed = started.find((s) => s.status === 'rejected');
        if (failed) throw (failed as PromiseRejectedResult).reason;
        // The smaller total first, so that each replica's RSS is not the larger load's leftover.
        for (const total of totals) {
          ctx.progress.step(`fleet: ${n} replicas, ${total} streams, ${ctx.opts.fleet.rate} events/s for ${ctx.opts.duration} s`);
          mine.push(await fleetLoad(ctx, database, counters, servers, total));
          ctx.progress.tick();
        }
        await Promise.all(servers.map((s) => s.close()));
        // Less the writers' transactions and the bench's reads of the committed order (two per project and load).
        const x = (await counters.settledXacts()) - x0 - mine.reduce((a, r) => a + r.writer_statements + 2 * r.projects, 0);
        const whole = statementDelta(whole0, await counters.statements());
        const changes = mine.reduce((a, r) => a + r.committed, 0);
        const statements = whole.reduce((a, q) => a + q.calls, 0);
        xacts.push({ replicas: n, changes, xacts: x, statements, per_change: round(x / Math.max(1, changes), 3), statements_per_change: round(statements / Math.max(1, changes), 3) });
        rows.push(...mine);
      } finally {
        await Promise.all(servers.map((s) => s.close()));
        await counters.close();
        await database.drop();
      }
    }
    const all = fitLine(rows.map((r) => [r.replicas, r.db_queries_per_change]));
    const fits = totals.map((t) => fitLine(rows.filter((r) => r.streams === t).map((r) => [r.replicas, r.db_queries_per_change])));
    const byTotal = Object.fromEntries(totals.map((t, i) => [t, { per_replica: round(fits[i].b, 3), fixed: round(fits[i].a, 3) }]));
    // The headline is the smaller load's: with more deliveries per change a
    // busier replica's reads coalesce, and a change costs it less.
    const fit = fits[0];
    const lo = totals[0];
    const hi = totals[totals.length - 1];
    const ratios = replicas.map((n) => {
      const a = rows.find((r) => r.replicas === n && r.streams === lo)!;
      const b = rows.find((r) => r.replicas === n && r.streams === hi)!;
      return b.db_queries_per_change / Math.max(1e-9, a.db_queries_per_change);
    });
    const top = rows.find((r) => r.replicas === Math.max(...replicas) && r.streams === hi)!;
    const xfit = fitLine(xacts.map((x) => [x.replicas, x.per_change]));
    const mfit = fitLine(rows.map((r) => [r.replicas, r.metric_queries_per_change]));
    return {
      replicas: top.replicas,
      streams: hi,
      rate: ctx.opts.fleet.rate,
      queries_per_change_per_replica: round(fit.b, 3),
      queries_per_change_fixed: round(fit.a, 3),
      streams_effect_ratio: round(mean(ratios), 3),
      connections_per_replica: Math.max(...rows.map((r) => r.connections_per_replica)),
      replica_rss_mb: Math.max(...top.replica_rss_mb),
      replica_cpu_percent: round(mean(top.replica_cpu_percent), 1),
      lost: rows.reduce((a, r) => a + r.lost, 0),
      duplicated: rows.reduce((a, r) => a + r.duplicated, 0),
      misordered: rows.reduce((a, r) => a + r.misordered, 0),
      fit_by_streams: byTotal,
      fit_all: { per_replica: round(all.b, 3), fixed: round(all.a, 3) },
      fit_daemon_metrics: { per_replica: round(mfit.b, 3), fixed: round(mfit.a, 3) },
      // Over each fleet's whole life, start-up and shutdown included.
      xacts,
      fit_xacts: { per_replica: round(xfit.b, 3), fixed: round(xfit.a, 3) },
      series: rows,
    };
  },
  table(r) {
    const out: Array<[string, string]> = [];
    for (const row of r.series) {
      out.push([
        `${row.replicas} replicas, ${row.streams} streams (${row.streams_per_replica} each)`,
        `${row.db_queries_per_change} queries/change (${row.db_queries_per_change_per_replica} per replica; the daemons count ${row.metric_queries_per_change}); ${row.deliveries_per_s} deliveries/s, p99 ${row.p99_ms} ms`,
      ]);
      out.push([
        '',
        `per replica: cpu ${row.replica_cpu_percent.join('/')}%, rss ${row.replica_rss_mb.join('/')} MB, ${row.connections_per_replica} connections; open ${row.open_queries_per_stream} queries/stream; lost ${row.lost}, dup ${row.duplicated}, misordered ${row.misordered}${row.drained ? '' : ' (not drained)'}${row.open_failures ? `, ${row.open_failures} refused` : ''}${row.server_exited ? `; a replica ended by itself: ${row.server_exited}` : ''}`,
      ]);
    }
    const fits = Object.entries(r.fit_by_streams as Record<string, { per_replica: number; fixed: number }>).map(([t, f]) => `${f.fixed} + ${f.per_replica} × replicas at ${t} streams`);
    out.push(['fit over replicas', `queries/change = ${fits.join('; ')}; ${r.streams} vs ${r.series[0]?.streams ?? 0} streams: ${r.streams_effect_ratio}×`]);
    const xf = r.fit_xacts as { per_replica: number; fixed: number };
    const xs = (r.xacts as Array<{ replicas: number; per_change: number }>).map((x) => `${x.replicas}: ${x.per_change}`).join(', ');
    out.push(['transactions', `per change, whole runs (replicas: xacts) ${xs}; fit ${xf.fixed} + ${xf.per_replica} × replicas`]);
    return out;
  },
  charts(r) {
    const totals = [...new Set(r.series.map((x) => x.streams))];
    const series = (f: (x: FleetRow) => number) =>
      totals.map((t) => ({ name: `${t} streams`, points: r.series.filter((x) => x.streams === t).map((x) => [x.replicas, f(x)] as [number, number]) }));
    return {
      charts: [
        { kind: 'line', title: 'DB queries per change (pg_stat_statements)', xLabel: 'replicas', yLabel: 'queries/change', series: series((x) => x.db_queries_per_change) },
        { kind: 'line', title: 'peak RSS per replica (largest)', xLabel: 'replicas', yLabel: 'MB', series: series((x) => Math.max(...x.replica_rss_mb)) },
        { kind: 'line', title: 'CPU of all replicas together', xLabel: 'replicas', yLabel: '% of one core', series: series((x) => x.daemon_cpu_percent_total) },
      ],
      caption: `fleet: ${r.rate} events/s, ${totals.join(' and ')} streams shared out over ${r.series.map((x) => x.replicas).filter((v, i, a) => a.indexOf(v) === i).join(', ')} replicas`,
    };
  },
};

if (isMain(import.meta.url)) await runBench([fleet], process.argv.slice(2), 'fleet');
