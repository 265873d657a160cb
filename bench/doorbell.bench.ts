// doorbell: what waking the daemon costs, NOTIFY (PGFEED_WAKE=notify)
// against the wake poll (PGFEED_WAKE=poll, writers never notify), side by
// side in one run:
//
//   concurrent  16 writers commit single-row transactions into a tracked and
//               an untracked table in turns, with a daemon of the mode running
//               (its LISTEN, its wake poll, its tail reads), on a Postgres with
//               its default durability: tracked / untracked throughput per mode
//   latency     fanout at 1,000 streams x 1,000 events/s in each mode (the
//               fanout scenario's run, on the bench's Postgres): p50, p99
//   idle        a daemon of each mode with no writes and no streams: the CPU of
//               its Postgres backends, and of the daemon itself
//
//   npm run bench:doorbell
import pg from 'pg';
import { migrate } from '../src/db/migrate.js';
import { startScratchPostgres } from '../test/helpers/scratch-postgres.js';
import { sleep } from '../test/helpers/wait.js';
import { median } from './capture.bench.js';
import { fanoutRun, type FanoutRow } from './fanout.bench.js';
import { scrapeText, metricByLabel } from './lib/metrics-scrape.js';
import { runMs } from './lib/proc-stats.js';
import { isMain, runBench, type BenchContext, type Scenario } from './lib/runner.js';
import { ServerProcess } from './lib/server-process.js';
import { round } from './lib/summary.js';

const MODES = ['notify', 'poll'] as const;
type Mode = (typeof MODES)[number];

const WRITERS = 16;
const TABLES = { untracked: 'bench_untracked', tracked: 'bench_tracked' } as const;

/** Each mode's database settings: poll mode means writers that never notify. */
const settingsFor = (mode: Mode) => `UPDATE pgfeed.settings SET notify = ${mode === 'notify'}`;
const envFor = (mode: Mode) => ({ PGFEED_WAKE: mode });

async function connect(url: string, name: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, application_name: `pgfeed:bench:${name}` });
  await c.connect();
  return c;
}

/** Every writer commits single-row transactions until the deadline; transactions per second. */
async function writeFor(writers: pg.Client[], table: string, ms: number): Promise<number> {
  const q = { name: `insert_${table}`, text: `INSERT INTO ${table} (project, kind, amount, payload) VALUES ($1, 'order', $2, $3)` };
  let commits = 0;
  const t0 = performance.now();
  await Promise.all(
    writers.map(async (c, w) => {
      for (let i = 0; performance.now() < t0 + ms; i++) {
        await c.query('BEGIN');
        await c.query({ ...q, values: [`tenant-${(w + i) % 8}`, i, { sku: `A-${i}`, qty: i % 5 }] });
        await c.query('COMMIT');
        commits++;
      }
    }),
  );
  return commits / ((performance.now() - t0) / 1000);
}

/** Pids of the daemon's Postgres backends, by application_name. */
async function daemonBackends(c: pg.Client): Promise<Record<string, number[]>> {
  const { rows } = await c.query<{ app: string; pid: number }>(
    `SELECT application_name AS app, pid FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'pgfeed:%' AND application_name NOT LIKE 'pgfeed:bench:%'`);
  const out: Record<string, number[]> = {};
  for (const r of rows) (out[r.app] ??= []).push(r.pid);
  return out;
}

/** Each backend's CPU ms so far; a backend that has ended is left out. */
function cpuOf(pids: number[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const p of pids) {
    try {
      out.set(p, runMs(p));
    } catch {
      // ended
    }
  }
  return out;
}

/** CPU ms between two readings, of the backends alive at both (the pool may replace a connection in between). */
function cpuBetween(a: Map<number, number>, b: Map<number, number>): number {
  let ms = 0;
  for (const [p, v] of b) if (a.has(p)) ms += v - a.get(p)!;
  return ms;
}

export interface ModeRow {
  mode: Mode;
  /** Median over rounds of tracked / untracked throughput, 16 writers. */
  concurrent_ratio: number;
  rounds: { untracked_tx_s: number; tracked_tx_s: number; ratio: number }[];
  /** The daemon's Postgres backends while the tracked table was written: % of one core, by application_name. */
  loaded_pg_cpu_percent: Record<string, number>;
  /** The same with no writes and no streams. */
  idle_pg_cpu_percent: number;
  idle_pg_cpu_by_backend: Record<string, number>;
  idle_daemon_cpu_percent: number;
  /** Queries by kind per second at idle, from the daemon's counter. */
  idle_queries_per_s: Record<string, number>;
}

/** One mode against the durable server: concurrent rounds, then idle. */
async function modeRun(url: string, mode: Mode, o: { rounds: number; segmentMs: number; idleMs: number }, log: (s: string) => void): Promise<ModeRow> {
  const main = await connect(url, 'main');
  const writers: pg.Client[] = [];
  let daemon: ServerProcess | null = null;
  try {
    await main.query(settingsFor(mode));
    daemon = await ServerProcess.start('pgfeed', { databaseUrl: url, env: envFor(mode) });
    for (let w = 0; w < WRITERS; w++) writers.push(await connect(url, `writer${w}`));
    for (const t of Object.values(TABLES)) await writeFor(writers, t, 300);
    const rounds: ModeRow['rounds'] = [];
    const loaded: Record<string, { ms: number; s: number }> = {};
    for (let r = 0; r < o.rounds; r++) {
      const rate: Record<string, number> = {};
      for (const kind of r % 2 ? (['tracked', 'untracked'] as const) : (['untracked', 'tracked'] as const)) {
        await main.query(`TRUNCATE pgfeed.change_log, ${Object.values(TABLES).join(', ')}`);
        await main.query('CHECKPOINT');
        const backends = await daemonBackends(main);
        const before = Object.fromEntries(Object.entries(backends).map(([app, pids]) => [app, cpuOf(pids)]));
        const t0 = performance.now();
        rate[kind] = await writeFor(writers, TABLES[kind], o.segmentMs);
        if (kind === 'tracked') {
          const s = (performance.now() - t0) / 1000;
          for (const [app, pids] of Object.entries(backends)) {
            const x = (loaded[app] ??= { ms: 0, s: 0 });
            x.ms += cpuBetween(before[app], cpuOf(pids));
            x.s += s;
          }
        }
      }
      rounds.push({ untracked_tx_s: round(rate.untracked, 0), tracked_tx_s: round(rate.tracked, 0), ratio: round(rate.tracked / rate.untracked, 3) });
      log(`doorbell: ${mode}, round ${r + 1}: untracked ${Math.round(rate.untracked)} tx/s, tracked ${Math.round(rate.tracked)} tx/s`);
    }
    for (const w of writers.splice(0)) await w.end();
    // Idle: the writers are gone; let the tail read what they left, then measure.
    await sleep(1000);
    const backends = await daemonBackends(main);
    const before = Object.fromEntries(Object.entries(backends).map(([app, p]) => [app, cpuOf(p)]));
    const d0 = runMs(daemon.pid);
    const q0 = metricByLabel(await scrapeText(daemon.url), 'pgfeed_db_queries_total', 'kind');
    const t0 = performance.now();
    await sleep(o.idleMs);
    const s = (performance.now() - t0) / 1000;
    const q1 = metricByLabel(await scrapeText(daemon.url), 'pgfeed_db_queries_total', 'kind');
    const idleMs = Object.fromEntries(Object.entries(backends).map(([app, p]) => [app, cpuBetween(before[app], cpuOf(p))]));
    const byBackend = Object.fromEntries(Object.entries(idleMs).map(([app, ms]) => [app, round(ms / 10 / s, 2)]));
    return {
      mode,
      concurrent_ratio: round(median(rounds.map((r) => r.ratio)), 3),
      rounds,
      loaded_pg_cpu_percent: Object.fromEntries(Object.entries(loaded).map(([app, x]) => [app, round(x.ms / 10 / x.s, 2)])),
      idle_pg_cpu_percent: round(Object.values(idleMs).reduce((a, b) => a + b, 0) / 10 / s, 2),
      idle_pg_cpu_by_backend: byBackend,
      idle_daemon_cpu_percent: round(((runMs(daemon.pid) - d0) / 10) / s, 2),
      idle_queries_per_s: Object.fromEntries(Object.keys(q1).map((k) => [k, round(((q1[k] ?? 0) - (q0[k] ?? 0)) / s, 1)])),
    };
  } finally {
    for (const w of writers) await w.end().catch(() => {});
    await daemon?.close();
    await main.query(settingsFor('notify')).catch(() => {});
    await main.end();
  }
}

export interface DoorbellResult {
  /** The recommended mode for write-heavy databases, whose figures the keys below are. */
  mode: Mode;
  concurrent_ratio: number;
  p99_ms: number;
  streams: number;
  rate: number;
  idle_pg_cpu_percent: number;
  modes: ModeRow[];
  latency: Pick<FanoutRow, 'server' | 'streams' | 'rate' | 'deliveries_per_s' | 'p50_ms' | 'p99_ms' | 'p999_ms' | 'cpu_percent' | 'db_queries_per_s' | 'lost' | 'duplicated' | 'misordered'>[];
  latency_modes: Mode[];
  /** The raw uWS ceiling at the same streams and rate, in the same run. */
  raw: { p50_ms: number; p99_ms: number; deliveries_per_s: number };
}

const LATENCY = { streams: 1000, rate: 1000, projects: 100 };

export const doorbell: Scenario<DoorbellResult> = {
  name: 'doorbell',
  steps: () => 2 * MODES.length + 2,
  async run(ctx: BenchContext) {
    if (!ctx.pgfeed) return 'the daemon is not built: both modes are pgfeed';
    const o = ctx.opts.full ? { rounds: 7, segmentMs: 4000, idleMs: 20_000 } : { rounds: 5, segmentMs: 2000, idleMs: 10_000 };
    // Commits cost what they cost in production here: Postgres' default durability.
    ctx.progress.step('doorbell: starting a Postgres with its default durability');
    const server = await startScratchPostgres({ prefix: 'pgfeed-bench-doorbell-', flags: ['-c', 'max_connections=100'] });
    const modes: ModeRow[] = [];
    try {
      const admin = await connect(server.url(), 'admin');
      await admin.query('CREATE DATABASE doorbell');
      await admin.end();
      const url = server.url('doorbell');
      await migrate(url);
      const c = await connect(url, 'setup');
      await c.query(Object.values(TABLES).map((t) => `CREATE TABLE ${t} (id bigserial PRIMARY KEY, project text NOT NULL, kind text NOT NULL, amount int NOT NULL, payload jsonb NOT NULL);`).join('\n') +
        `SELECT pgfeed.track('${TABLES.tracked}', 'project');`);
      await c.end();
      ctx.progress.tick();
      for (const mode of MODES) {
        ctx.progress.step(`doorbell: ${mode}, ${WRITERS} writers, ${o.rounds} rounds of ${o.segmentMs} ms per table, then ${o.idleMs / 1000} s idle`);
        modes.push(await modeRun(url, mode, o, (s) => ctx.progress.step(s)));
        ctx.progress.tick();
      }
    } finally {
      await server.stop();
    }
    const latency: DoorbellResult['latency'] = [];
    for (const mode of MODES) {
      ctx.progress.step(`doorbell: ${mode}, fanout at ${LATENCY.streams} streams x ${LATENCY.rate} events/s`);
      const row = await fanoutRun(ctx, 'pgfeed', LATENCY.streams, {
        rate: LATENCY.rate,
        projects: LATENCY.projects,
        env: envFor(mode),
        prepare: (url) => withClient(url, (c) => c.query(settingsFor(mode))),
      });
      const { server: s, streams, rate, deliveries_per_s, p50_ms, p99_ms, p999_ms, cpu_percent, db_queries_per_s, lost, duplicated, misordered } = row;
      latency.push({ server: s, streams, rate, deliveries_per_s, p50_ms, p99_ms, p999_ms, cpu_percent, db_queries_per_s, lost, duplicated, misordered });
      ctx.progress.tick();
    }
    // The ceiling on this machine at the same point: a box too busy to reach it shows here.
    ctx.progress.step(`doorbell: raw, fanout at ${LATENCY.streams} streams x ${LATENCY.rate} events/s`);
    const raw = await fanoutRun(ctx, 'raw', LATENCY.streams, { rate: LATENCY.rate, projects: LATENCY.projects });
    ctx.progress.tick();
    const poll = modes.find((m) => m.mode === 'poll')!;
    return {
      mode: 'poll',
      concurrent_ratio: poll.concurrent_ratio,
      p99_ms: latency[MODES.indexOf('poll')].p99_ms,
      streams: LATENCY.streams,
      rate: LATENCY.rate,
      idle_pg_cpu_percent: poll.idle_pg_cpu_percent,
      modes,
      latency,
      latency_modes: [...MODES],
      raw: { p50_ms: raw.p50_ms, p99_ms: raw.p99_ms, deliveries_per_s: raw.deliveries_per_s },
    };
  },
  table(r) {
    const out: Array<[string, string]> = [];
    for (const m of r.modes) {
      out.push([`${m.mode}: 16 writers`, `tracked/untracked ${m.concurrent_ratio}x (rounds ${m.rounds.map((x) => `${x.tracked_tx_s}/${x.untracked_tx_s}`).join(', ')} tx/s)`]);
      out.push(['', `daemon's Postgres CPU while writing: ${Object.entries(m.loaded_pg_cpu_percent).map(([k, v]) => `${k} ${v}%`).join(', ')}`]);
      out.push(['', `idle: Postgres ${m.idle_pg_cpu_percent}% of one core (${Object.entries(m.idle_pg_cpu_by_backend).map(([k, v]) => `${k} ${v}%`).join(', ')}), daemon ${m.idle_daemon_cpu_percent}%, queries/s ${Object.entries(m.idle_queries_per_s).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(', ')}`]);
    }
    r.latency.forEach((l, i) => out.push([`${r.latency_modes[i]}: ${l.streams} streams x ${l.rate}/s`, `p50 ${l.p50_ms} ms, p99 ${l.p99_ms} ms, p99.9 ${l.p999_ms} ms; ${l.deliveries_per_s} deliveries/s, ${l.db_queries_per_s} queries/s; lost ${l.lost}, dup ${l.duplicated}, misordered ${l.misordered}`]));
    out.push([`raw: ${LATENCY.streams} streams x ${LATENCY.rate}/s`, `p50 ${r.raw.p50_ms} ms, p99 ${r.raw.p99_ms} ms; ${r.raw.deliveries_per_s} deliveries/s (the ceiling on this machine, same run)`]);
    return out;
  },
};

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<void> {
  const c = await connect(url, 'prepare');
  try {
    await fn(c);
  } finally {
    await c.end();
  }
}

if (isMain(import.meta.url)) await runBench([doorbell], process.argv.slice(2), 'doorbell');
