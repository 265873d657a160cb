// storm: restart the daemon under N live streams while writers keep
// committing. Every client reconnects like EventSource (after its jittered
// `retry:` delay, with Last-Event-ID). Measures the time from SIGTERM until
// every client has been accepted again, and checks that no event was lost,
// duplicated or reordered across the restart.

import type { BenchDatabase } from './lib/bench-db.js';
import { LoadGenerator } from './lib/load-generator.js';
import { isMain, runBench, type Scenario } from './lib/runner.js';
import { ServerProcess } from './lib/server-process.js';
import { round } from './lib/summary.js';
import { satisfied, sleep, waitUntil } from '../test/helpers/wait.js';
import { expectedOrder, Writers } from './lib/writers.js';

const RESTART_DEADLINE_MS = 120_000;
// The writers are held to at most this many deliveries/s in total, so that
// the figure is about the restart and not about an overloaded machine.
const MAX_DELIVERIES_PER_S = 20_000;

export interface StormResult {
  streams: number;
  resume_seconds: number;
  lost: number;
  [extra: string]: unknown;
}

export const storm: Scenario<StormResult> = {
  name: 'storm',
  steps: () => 1,
  async run(ctx) {
    if (!ctx.pgfeed) return 'the pgfeed daemon is not built';
    const n = ctx.opts.stormStreams;
    const projects = Math.min(ctx.opts.projects, n);
    const names = Array.from({ length: projects }, (_, i) => `p${i}`);
    let database: BenchDatabase | null = null;
    let srv: ServerProcess | null = null;
    let gen: LoadGenerator | null = null;
    let writers: Writers | null = null;
    try {
      ctx.progress.step(`storm: restart pgfeed under ${n} streams`);
      database = await ctx.db.fresh();
      srv = await ServerProcess.start('pgfeed', { databaseUrl: database.url });
      const port = srv.port;
      gen = new LoadGenerator({ host: '127.0.0.1', port, totalStreams: n });
      const specs = Array.from({ length: n }, (_, i) => ({ project: names[i % projects], path: `/v1/events?project=${names[i % projects]}&after=0` }));
      const opened = await gen.open(specs, true);
      const rate = Math.min(ctx.opts.rate, Math.floor((MAX_DELIVERIES_PER_S * projects) / n));
      writers = new Writers(database.url, { rate, projects });
      await writers.start();
      await sleep(2000);

      const t0 = Date.now();
      const stopped = await srv.close();
      srv = null;
      const t1 = Date.now();
      // Restarted like a supervisor would (systemd Restart=on-failure): the
      // same port, tried again until it binds, bounded.
      let startAttempts = 0;
      for (;;) {
        startAttempts++;
        try {
          srv = await ServerProcess.start('pgfeed', { databaseUrl: database.url, port });
          break;
        } catch (err) {
          if (Date.now() - t1 > RESTART_DEADLINE_MS) throw err;
          if (startAttempts === 1) ctx.progress.note(`storm: pgfeed could not bind port ${port} again at once (${String(err).split('\n').find((l) => l.includes('listen on')) ?? 'exited'}); retrying every 250 ms`);
          await sleep(250);
        }
      }
      const t2 = Date.now();
      let resumed = 0;
      const allResumed = await satisfied(
        waitUntil(
          async () => {
            resumed = (await gen!.stats(t0)).openSince;
            return resumed >= n;
          },
          ctx.opts.full ? 120_000 : 60_000,
          'every stream to resume',
          { intervalMs: 100 },
        ),
      );
      const st = await gen.stats(t0);
      const resumeSeconds = (st.lastOpenAt - t0) / 1000;
      // Keep writing a little after everyone is back, then drain.
      await sleep(2000);
      const { committed } = await writers.stop();
      const expected = await expectedOrder(database.url, names);
      const { drained } = await gen.drain(expected, { timeoutMs: ctx.opts.full ? 180_000 : 60_000, stallMs: 15_000 });
      const check = await gen.check(expected);
      const end = await gen.stats(t0);
      ctx.progress.tick();
      return {
        streams: n,
        projects,
        rate,
        resume_seconds: round(resumeSeconds, 2),
        // The reconnect storm alone: from the new process listening until
        // every client is back, without the time the port took to bind.
        resume_after_listen_seconds: round((st.lastOpenAt - t2) / 1000, 2),
        lost: check.lost,
        duplicated: check.duplicated,
        misordered: check.misordered,
        all_resumed: allResumed,
        resumed: st.openSince,
        opened_before: opened.open,
        committed,
        drained,
        shutdown_seconds: round((t1 - t0) / 1000, 2),
        shutdown_exit_code: stopped.code,
        restart_seconds: round((t2 - t1) / 1000, 2),
        restart_attempts: startAttempts,
        refused_or_failed_attempts: end.failures,
        statuses: end.statuses,
      };
    } finally {
      await gen?.close();
      await writers?.close();
      await srv?.close();
      await database?.drop();
    }
  },
  table(r) {
    return [
      ['streams resumed', `${r.resumed as number}/${r.streams}${r.all_resumed ? '' : ' (NOT all)'}`],
      ['resume time', `${r.resume_seconds} s after SIGTERM (shutdown ${r.shutdown_seconds as number} s, exit ${String(r.shutdown_exit_code)}; start ${r.restart_seconds as number} s in ${r.restart_attempts as number} attempt(s))`],
      ['resume after listening', `${r.resume_after_listen_seconds as number} s from the new process listening until every stream was accepted`],
      ['lost/dup/misordered', `${r.lost}/${r.duplicated as number}/${r.misordered as number} (${r.committed as number} events committed at ${r.rate as number}/s over ${r.projects as number} projects)${r.drained ? '' : ' (NOT drained before the deadline: lost counts what had not arrived)'}`],
    ];
  },
  charts(r) {
    return {
      charts: [
        {
          kind: 'bar',
          title: `restart under ${r.streams} streams`,
          yLabel: 'seconds',
          bars: [
            { label: 'shutdown', value: r.shutdown_seconds as number },
            { label: 'start', value: r.restart_seconds as number },
            { label: 'all resumed', value: r.resume_seconds },
            { label: 'after listen', value: r.resume_after_listen_seconds as number },
          ],
        },
        { kind: 'bar', title: 'events lost / duplicated / misordered', yLabel: 'events', bars: [{ label: 'lost', value: r.lost }, { label: 'dup', value: r.duplicated as number }, { label: 'misord', value: r.misordered as number }] },
      ],
      caption: `storm: SIGTERM and restart of pgfeed on the same port under ${r.streams} live streams while writers commit`,
    };
  },
};

if (isMain(import.meta.url)) await runBench([storm], process.argv.slice(2), 'storm');
