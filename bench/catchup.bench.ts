// catchup: how fast history is replayed from Postgres.
//  1. One stream replays a backlog of B events of one project (events/s).
//  2. K streams reconnect with Last-Event-ID, each D events behind: time
//     until all are caught up, and rows Postgres read (pg_stat counters of
//     pgfeed.change_log) against the K x D rows the streams needed.
//  3. Many streams replay another project from after=0 at once: aggregate
//     events/s and the daemon's peak RSS (what catch-up memory comes to).
// The naive comparator runs step 2 on the same database for reference.
// PGFEED_BENCH_BASELINE_DAEMON=<another build's cli.js> also runs pgfeed's
// steps 1 and 3 against that build, in the same run, for a comparison.

import { execFileSync } from 'node:child_process';
import type pg from 'pg';
import { fillLog } from './lib/backlog.js';
import type { BenchDatabase } from './lib/bench-db.js';
import { LoadGenerator } from './lib/load-generator.js';
import type { BadStream } from './lib/load-protocol.js';
import { metricByLabel, scrapeText } from './lib/metrics-scrape.js';
import { ProcMonitor } from './lib/proc-stats.js';
import { isMain, runBench, type BenchContext, type Scenario } from './lib/runner.js';
import { ServerProcess, type ServerKind } from './lib/server-process.js';
import { round, type Summary } from './lib/summary.js';
import { sleep } from '../test/helpers/wait.js';
import { expectedOrder } from './lib/writers.js';

const PROJECT = 'c0';
/** The project of step 3, written after PROJECT's backlog: neither replay reads the other's rows. */
const FROM_ZERO = 'z0';
const BASELINE = process.env.PGFEED_BENCH_BASELINE_DAEMON;

/** Rows read from pgfeed.change_log so far: sequential plus index scans. */
async function rowsRead(c: pg.Client): Promise<number> {
  const r = await c.query<{ n: string }>(`
    SELECT coalesce(t.seq_tup_read, 0)
         + coalesce((SELECT sum(i.idx_tup_read) FROM pg_stat_user_indexes i WHERE i.relid = t.relid), 0) AS n
    FROM pg_stat_user_tables t WHERE t.relid = 'pgfeed.change_log'::regclass`);
  return Number(r.rows[0]?.n ?? 0);
}

/**
 * The server port's connections whose kernel queues hold bytes, when a replay
 * stalls: bytes waiting there mean the client stopped reading them; none
 * anywhere mean they never left the server (or the client lost them).
 */
interface SocketQueues {
  /** Connections with bytes unread by the client (its Recv-Q), and how many bytes. */
  client_unread: { connections: number; bytes: number };
  /** Connections with bytes the server's kernel has not sent yet (its Send-Q). */
  server_unsent: { connections: number; bytes: number };
}

function socketQueues(port: number): SocketQueues | { error: string } {
  let out: string;
  try {
    out = execFileSync('ss', ['-tnH', 'state', 'established', `( sport = :${port} or dport = :${port} )`], { encoding: 'utf8' });
  } catch (err) {
    return { error: `ss (iproute2) failed: ${(err as Error).message.split('\n')[0]}` };
  }
  const q: SocketQueues = { client_unread: { connections: 0, bytes: 0 }, server_unsent: { connections: 0, bytes: 0 } };
  for (const line of out.split('\n')) {
    // Recv-Q Send-Q Local:Port Peer:Port (the state column is left out with `state established`).
    const [recv, send, local] = line.trim().split(/\s+/);
    if (!local) continue;
    const serverSide = local.endsWith(`:${port}`);
    if (!serverSide && Number(recv) > 0) (q.client_unread.connections++, (q.client_unread.bytes += Number(recv)));
    if (serverSide && Number(send) > 0) (q.server_unsent.connections++, (q.server_unsent.bytes += Number(send)));
  }
  return q;
}

// An idle backend may hold its table statistics for up to 10 s, but an
// exiting one publishes them at once: each replay therefore gets its own
// server process, and the counters are read after it stopped.
const STATS_FLUSH_MS = 500;

interface ReplayRow {
  /** pgfeed, naive, or pgfeed-baseline (PGFEED_BENCH_BASELINE_DAEMON). */
  server: string;
  project: string;
  streams: number;
  behind: number;
  seconds: number;
  events_per_s: number;
  rows_read: number;
  rows_needed: number;
  rows_read_ratio: number;
  caught_up: boolean;
  lost: number;
  duplicated: number;
  misordered: number;
  /** pgfeed only, when not caught up: the daemon's streams by state at the end (pgfeed_subscribers). */
  subscribers_at_end?: Record<string, number>;
  /** When not caught up: where the missing bytes are, by the kernel's socket queues at that moment. */
  socket_queues_at_end?: SocketQueues | { error: string };
  /** When not caught up: lost events before a stream's last received one (skipped rather than not yet sent), and a few bad streams. */
  holes?: number;
  bad_streams?: { count: number; examples: BadStream[] };
  /** pgfeed only, when not caught up: catch-up bytes the daemon still holds (/ui/api/streams). */
  daemon_held_bytes?: unknown;
  /** Connections the server ended before the stream caught up (each then resumed with Last-Event-ID, as an EventSource does; step 3 only). */
  disconnects: number;
  /** Streams that were refused or failed to open, by status or code. */
  open_failures: Record<string, number>;
  /** The server's peak RSS during the run (sampled every 250 ms). */
  peak_rss_mb: number;
  /** The server process ended by itself during the run (e.g. out of memory). */
  server_exited?: string;
}

interface Replay {
  kind: ServerKind;
  /** Another build's cli.js (pgfeed only). */
  daemon?: string;
  project: string;
  /** The project's events in delivery order. */
  order: number[];
  streams: number;
  behind: number;
  /** Resume with Last-Event-ID when the server ends a connection. */
  reconnect?: boolean;
}

async function replay(ctx: BenchContext, c: pg.Client, url: string, run: Replay): Promise<ReplayRow> {
  const { kind, order, streams, behind, project } = run;
  await c.query('SELECT pg_stat_force_next_flush()');
  const r0 = await rowsRead(c);
  let srv: ServerProcess | null = await ServerProcess.start(kind, { databaseUrl: url, daemon: run.daemon });
  const gen = new LoadGenerator({ host: '127.0.0.1', port: srv.port, totalStreams: streams });
  const mon = new ProcMonitor(srv.pid);
  try {
    const expected = order.slice(order.length - behind);
    // The cursor is the event just before the last `behind` ones; 0 replays all.
    const cursor = behind >= order.length ? undefined : String(order[order.length - behind - 1]);
    const needed = streams * behind;
    const t0 = Date.now();
    await gen.open(
      Array.from({ length: streams }, () => ({ project, path: `/v1/events?project=${project}&after=0`, lastEventId: cursor })),
      // A stream whose client takes nothing for PGFEED_SLOW_CLIENT_TIMEOUT_MS
      // is ended: with many streams on two shared cores a client can fall
      // that far behind, and then it resumes like an EventSource.
      run.reconnect ?? false,
    );
    const { reached: caughtUp } = await gen.deliveriesReach(needed, {
      // Resuming streams (step 3) may take several retry delays more.
      timeoutMs: ctx.opts.full || run.reconnect ? 180_000 : 60_000,
      stallMs: 10_000,
      what: 'the catch-up',
      intervalMs: 50,
    });
    const st = await gen.stats();
    const seconds = (st.lastEventAt - t0) / 1000;
    const peakRssMb = mon.result().peakRssMb;
    const states = kind === 'pgfeed' && !caughtUp ? metricByLabel(await scrapeText(srv.url), 'pgfeed_subscribers', 'state') : null;
    const queues = caughtUp ? null : socketQueues(srv.port);
    const held = kind === 'pgfeed' && !caughtUp ? await fetch(`${srv.url}/ui/api/streams`).then((r) => r.json()).then((v) => ({ streams: v.streams, catchup: v.catchup }), (e: Error) => ({ error: e.message })) : null;
    const check = await gen.check({ [project]: expected });
    const crashed = srv.exitedEarly;
    await gen.close();
    await srv.close();
    srv = null;
    await sleep(STATS_FLUSH_MS);
    const r1 = await rowsRead(c);
    return {
      server: run.daemon ? `${kind}-baseline` : kind,
      project,
      streams,
      behind,
      seconds: round(seconds, 3),
      events_per_s: round(st.deliveries / Math.max(0.001, seconds), 0),
      rows_read: r1 - r0,
      rows_needed: needed,
      rows_read_ratio: round((r1 - r0) / needed, 3),
      caught_up: caughtUp,
      lost: check.lost,
      duplicated: check.duplicated,
      misordered: check.misordered,
      peak_rss_mb: round(peakRssMb, 1),
      disconnects: st.disconnects,
      open_failures: st.statuses,
      ...(states ? { subscribers_at_end: states } : {}),
      ...(queues ? { socket_queues_at_end: queues } : {}),
      ...(caughtUp ? {} : { holes: check.holes, bad_streams: { count: check.badStreams, examples: check.badExamples } }),
      ...(held ? { daemon_held_bytes: held } : {}),
      ...(crashed ? { server_exited: crashed } : {}),
    };
  } finally {
    mon.close();
    await gen.close();
    await srv?.close();
  }
}

export interface CatchupResult {
  single_stream_events_per_s: number;
  reconnect_streams: number;
  reconnect_seconds: number;
  rows_read_ratio: number;
  many_from_zero: Summary['catchup']['many_from_zero'];
  [extra: string]: unknown;
}

export const catchup: Scenario<CatchupResult> = {
  name: 'catchup',
  steps: () => (BASELINE ? 7 : 5),
  async run(ctx) {
    const { catchupBacklog: backlog, catchupStreams: k, catchupBehind: behind, catchupFromZero: zero } = ctx.opts;
    let database: BenchDatabase | null = null;
    const rows: ReplayRow[] = [];
    try {
      database = await ctx.db.fresh();
      ctx.progress.step(`catchup: writing a ${backlog}-event backlog, and ${zero.events} events to replay from zero`);
      const url = database.url;
      const orders = await ctx.db.withClient(database.name, async (c) => {
        await fillLog(c, backlog, `'${PROJECT}'`);
        await fillLog(c, zero.events, `'${FROM_ZERO}'`);
        return expectedOrder(url, [PROJECT, FROM_ZERO]);
      });
      const order = orders[PROJECT];
      ctx.progress.tick();
      // The build under test, and the baseline build when one is given, side by side.
      const builds = ctx.pgfeed ? [undefined, ...(BASELINE ? [BASELINE] : [])] : [];
      await ctx.db.withClient(database.name, async (c) => {
        const run = async (what: string, r: Replay) => {
          ctx.progress.step(`catchup: ${r.kind}${r.daemon ? ' (baseline)' : ''}, ${what}`);
          rows.push(await replay(ctx, c, url, r));
          ctx.progress.tick();
        };
        for (const daemon of builds) {
          await run(`one stream replays ${backlog} events`, { kind: 'pgfeed', daemon, project: PROJECT, order, streams: 1, behind: backlog });
        }
        for (const daemon of builds) {
          await run(`${zero.streams} streams replay ${zero.events} events from zero at once`, {
            kind: 'pgfeed', daemon, project: FROM_ZERO, order: orders[FROM_ZERO], streams: zero.streams, behind: zero.events, reconnect: true,
          });
        }
        for (const kind of [...(ctx.pgfeed ? (['pgfeed'] as const) : []), 'naive' as const]) {
          await run(`${k} streams reconnect ${behind} events behind`, { kind, project: PROJECT, order, streams: k, behind });
        }
      });
    } finally {
      await database?.drop();
    }
    const single = rows.find((r) => r.server === 'pgfeed' && r.streams === 1);
    const many = rows.find((r) => r.server === 'pgfeed' && r.project === PROJECT && r.streams === k);
    const fromZero = rows.find((r) => r.server === 'pgfeed' && r.project === FROM_ZERO);
    const naive = rows.find((r) => r.server === 'naive');
    return {
      single_stream_events_per_s: single?.events_per_s ?? 0,
      reconnect_streams: k,
      reconnect_seconds: many?.seconds ?? 0,
      rows_read_ratio: many?.rows_read_ratio ?? 0,
      many_from_zero: {
        streams: zero.streams,
        events_each: zero.events,
        peak_rss_mb: fromZero?.peak_rss_mb ?? 0,
        events_per_s: fromZero?.events_per_s ?? 0,
      },
      backlog,
      behind,
      pgfeed_measured: ctx.pgfeed,
      naive: naive ? { reconnect_seconds: naive.seconds, rows_read_ratio: naive.rows_read_ratio } : null,
      runs: rows,
    };
  },
  table(r) {
    const out: Array<[string, string]> = [];
    for (const x of r.runs as ReplayRow[]) {
      out.push([
        `${x.server}: ${x.streams} x ${x.behind} behind${x.project === FROM_ZERO ? ' (from zero)' : ''}`,
        `${x.seconds} s, ${x.events_per_s} events/s, peak RSS ${x.peak_rss_mb} MB, rows read ${x.rows_read_ratio}x needed, lost/dup/misord ${x.lost}/${x.duplicated}/${x.misordered}${x.caught_up ? '' : ' (NOT caught up)'}${Object.keys(x.open_failures).length ? `; failed opens ${JSON.stringify(x.open_failures)}` : ''}${x.disconnects ? `; ${x.disconnects} connections ended by the server and resumed` : ''}${x.subscribers_at_end ? `; streams at the end ${JSON.stringify(x.subscribers_at_end)}` : ''}${x.socket_queues_at_end ? `; socket queues at the end ${JSON.stringify(x.socket_queues_at_end)}` : ''}${x.bad_streams ? `; ${x.bad_streams.count} bad streams, ${x.holes} events skipped inside them` : ''}${x.server_exited ? `; server ended by itself: ${x.server_exited}` : ''}`,
      ]);
    }
    return out;
  },
  charts(r) {
    const runs = r.runs as ReplayRow[];
    const many = runs.filter((x) => x.streams > 1 && x.project === PROJECT);
    const zero = runs.filter((x) => x.project === FROM_ZERO);
    return {
      charts: [
        { kind: 'bar', title: 'single stream replay', yLabel: 'events/s', bars: runs.filter((x) => x.streams === 1).map((x) => ({ label: x.server, value: x.events_per_s })) },
        { kind: 'bar', title: `${r.reconnect_streams} streams catch up`, yLabel: 'seconds', bars: many.map((x) => ({ label: x.server, value: x.seconds })) },
        { kind: 'bar', title: 'rows read / rows needed', yLabel: 'ratio', bars: many.map((x) => ({ label: x.server, value: x.rows_read_ratio })) },
        { kind: 'bar', title: 'many streams from zero: peak RSS', yLabel: 'MB', bars: zero.map((x) => ({ label: x.server, value: x.peak_rss_mb })) },
      ],
      caption: `catchup: ${r.backlog as number}-event backlog; ${r.reconnect_streams} streams each ${r.behind as number} events behind; ${r.many_from_zero.streams} streams replay ${r.many_from_zero.events_each} events from zero`,
    };
  },
};

if (isMain(import.meta.url)) await runBench([catchup], process.argv.slice(2), 'catchup');
