// standby-storm: a reconnect storm served by a hot standby, against the
// same storm served by the primary, side by side in one run. 1,000 streams
// (--streams) resume at once, each 2,000 events (--behind) back, from a
// daemon that just started (an empty ring: every event is a catch-up read).
// The streams share 100 distinct cursors (--cursors): streams at one
// position share each read (single-flight), as the live clients of a
// project do after a deploy. Measured on the primary while the storm
// drains: the CPU of its processes (from /proc) and the statements it ran
// (its pg_stat_statements); and the storm's duration. 2,000 behind keeps a
// run near two minutes on a shared 2-core host, where the load generator's
// parsing is the bottleneck; --behind 10000 takes five times the
// deliveries. Needs Debian's PostgreSQL 15 (pg_basebackup), as
// test/daemon/standby.test.ts does.
//
//   npm run build && npm run bench:standby [-- --streams 1000 --behind 2000 --cursors 100]

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { emitBulk } from '../test/helpers/change-log.js';
import type { Cluster } from '../test/helpers/pg-cluster.js';
import { replicaPair, standbyAvailable } from '../test/helpers/standby.js';
import { waitUntil } from '../test/helpers/wait.js';
import { LoadGenerator } from './lib/load-generator.js';
import { ServerProcess } from './lib/server-process.js';
import { round } from './lib/summary.js';

const { values } = parseArgs({ options: { streams: { type: 'string', default: '1000' }, behind: { type: 'string', default: '2000' }, cursors: { type: 'string', default: '100' } } });
const STREAMS = Number(values.streams);
const BEHIND = Number(values.behind);
/** Distinct cursors the streams resume from: after a deploy, the live clients of a project sit at a few positions. */
const CURSORS = Math.min(Number(values.cursors), STREAMS);
const PROJECT = 'storm';
const TICKS_PER_S = 100;

/** User and system CPU ticks of every process of a server: the postmaster and its children (backends, walsender...). */
function serverTicks(c: Cluster): number {
  const postmaster = Number(readFileSync(join(c.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  let ticks = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(name) !== postmaster && Number(f[1]) !== postmaster) continue;
    ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks;
}

async function statements(c: Cluster): Promise<{ calls: number; ms: number; catchup: number }> {
  const { rows } = await c.query<{ calls: number; ms: number; catchup: number }>(
    `SELECT coalesce(sum(calls), 0)::int AS calls, coalesce(sum(total_exec_time), 0)::float8 AS ms,
            coalesce(sum(calls) FILTER (WHERE query LIKE '%c.project = $4%'), 0)::int AS catchup FROM pg_stat_statements`,
  );
  return rows[0];
}

interface Figures {
  served_by: string;
  storm_seconds: number;
  primary_cpu_seconds: number;
  primary_statements: number;
  primary_catchup_reads: number;
  primary_exec_ms: number;
  standby_catchup_reads: number;
  deliveries: number;
}

async function storm(pair: Awaited<ReturnType<typeof replicaPair>>, seqs: number[], viaStandby: boolean): Promise<Figures> {
  const srv = await ServerProcess.start('pgfeed', {
    databaseUrl: pair.primary.url,
    env: viaStandby ? { PGFEED_READ_URL: pair.standby.url } : {},
  });
  const gen = new LoadGenerator({ host: '127.0.0.1', port: srv.port, totalStreams: STREAMS });
  try {
    if (viaStandby) await waitUntil(async () => (await (await fetch(`${srv.url}/readyz`)).json()).standbys[0].state === 'streaming', 15_000, 'the standby to be trusted');
    for (const c of [pair.primary, pair.standby]) await c.query('SELECT pg_stat_statements_reset()');
    // Stream i resumes from cursor i % CURSORS, the k-th of the last CURSORS + BEHIND events: BEHIND events back, give or take CURSORS.
    const first = seqs.length - BEHIND - CURSORS;
    const at = (i: number) => first + (i % CURSORS);
    const specs = Array.from({ length: STREAMS }, (_, i) => ({ project: PROJECT, path: `/v1/events?project=${PROJECT}`, lastEventId: String(seqs[at(i)]) }));
    const want = specs.reduce((n, _, i) => n + (seqs.length - at(i) - 1), 0);
    const ticks0 = serverTicks(pair.primary);
    const t0 = performance.now();
    await gen.open(specs, true);
    const { reached, deliveries } = await gen.deliveriesReach(want, { timeoutMs: 300_000, stallMs: 20_000, what: 'the storm to drain' });
    if (!reached) throw new Error(`the storm did not drain: ${deliveries} of ${want} deliveries`);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = (serverTicks(pair.primary) - ticks0) / TICKS_PER_S;
    const p = await statements(pair.primary);
    const s = await statements(pair.standby);
    return {
      served_by: viaStandby ? 'standby' : 'primary',
      storm_seconds: round(seconds, 2),
      primary_cpu_seconds: round(cpu, 2),
      primary_statements: p.calls,
      primary_catchup_reads: p.catchup,
      primary_exec_ms: round(p.ms, 0),
      standby_catchup_reads: s.catchup,
      deliveries,
    };
  } finally {
    await gen.close();
    await srv.close();
  }
}

if (!standbyAvailable()) {
  console.error('standby-storm needs Debian PostgreSQL 15 (pg_basebackup) in /usr/lib/postgresql/15/bin');
  process.exit(1);
}
const pair = await replicaPair({ fsync: 'off', max_connections: 200 });
try {
  // A daemon migrates the primary; the standby gets the schema by replay.
  await (await ServerProcess.start('pgfeed', { databaseUrl: pair.primary.url })).close();
  const db = new pg.Pool({ connectionString: pair.primary.url });
  await emitBulk(db, PROJECT, CURSORS + BEHIND, 100);
  const { rows } = await db.query<{ seq: string }>(`SELECT seq FROM pgfeed.change_log WHERE project = $1 ORDER BY xid, seq`, [PROJECT]);
  await db.end();
  await pair.waitReplayed();
  const seqs = rows.map((r) => Number(r.seq));
  const out = [await storm(pair, seqs, false), await storm(pair, seqs, true)];
  console.log(`standby-storm: ${STREAMS} streams resuming ${BEHIND} events behind from ${CURSORS} distinct cursors (PostgreSQL 15 primary + hot standby on this host)`);
  console.table(Object.fromEntries(out.map((f) => [f.served_by, f])));
  const [a, b] = out;
  console.log(
    `served by the standby: primary CPU ${round(b.primary_cpu_seconds / Math.max(a.primary_cpu_seconds, 0.01), 3)}x, primary statements ${round(b.primary_statements / Math.max(a.primary_statements, 1), 3)}x, storm duration ${round(b.storm_seconds / a.storm_seconds, 2)}x of the storm served by the primary`,
  );
  console.log(JSON.stringify(out));
} finally {
  await pair.destroy();
}
