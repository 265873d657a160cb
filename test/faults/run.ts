// npm run test:faults [-- --seed N --duration SECONDS]
//
// Jepsen-style fault injection against real processes: a dedicated Postgres
// cluster, two pgfeed replicas, concurrent writers, SSE and poll clients, and a
// seeded schedule of crashes, restarts, stalls and lost notifications. At the
// end every client's record must equal its project's committed history.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { checkClient, loadGroundTruth } from './checker.js';
import { PollClient, Replicas, SseClient, typeMatches, type Client } from './clients.js';
import { Cluster } from '../helpers/pg-cluster.js';
import { Replica } from './daemon-process.js';
import { FAULT_KINDS, FaultSchedule, frontRoute, type Front } from './faults.js';
import { startSwitchProxy } from '../helpers/switch-proxy.js';
import { sleep } from '../helpers/wait.js';
import { Rng } from './rng.js';
import { Ledger, PROJECTS, SCHEMA_SQL, Writer } from './writers.js';

const DEFAULT_SEED = 20261122;
const DEFAULT_DURATION_S = 240;

const { values: args } = parseArgs({
  options: {
    seed: { type: 'string' },
    duration: { type: 'string' },
    writers: { type: 'string' },
    'clients-per-project': { type: 'string' },
    'keep-logs': { type: 'boolean', default: false },
  },
  strict: true,
});

function intArg(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    console.error(`faults: --${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

const seed = intArg('seed', args.seed ?? process.env.PGFEED_FAULTS_SEED, DEFAULT_SEED, 0, 2 ** 32 - 1);
const durationS = intArg('duration', args.duration ?? process.env.PGFEED_FAULTS_DURATION, DEFAULT_DURATION_S, 10, 6 * 3600);
const writerCount = intArg('writers', args.writers, 6, 1, 64);
const perProject = intArg('clients-per-project', args['clients-per-project'], 12, 4, 500);

const root = fileURLToPath(new URL('../../', import.meta.url));
const logDir = mkdtempSync(join(tmpdir(), 'pgfeed-faults-run-'));
const t0 = Date.now();
const log = (msg: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}`);

/** Everything that is not a stream verdict but still fails the run. */
const violations = new Map<string, string[]>();
function violation(category: string, what: string): void {
  const list = violations.get(category) ?? [];
  list.push(what);
  violations.set(category, list);
  log(`VIOLATION ${category}: ${what}`);
}

let cluster: Cluster | null = null;
const replicas: Replica[] = [];
const writers: Writer[] = [];
const clients: Client[] = [];
const lateTimers: NodeJS.Timeout[] = [];
/** Closed last-in-first-out on cleanup (the load balancer). */
const closers: Array<() => unknown> = [];
let cleaned = false;

async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  for (const t of lateTimers) clearTimeout(t);
  await Promise.race([
    Promise.allSettled([...clients.map((c) => c.stop()), ...writers.map((w) => w.stop())]),
    sleep(5000),
  ]);
  for (const close of closers.reverse()) await Promise.resolve(close()).catch(() => {});
  await Promise.allSettled(replicas.map((r) => r.close()));
  await cluster?.destroy().catch(() => {});
}

// The run is bounded: the fault phase, plus set-up, drain and leak checks.
const budgetMs = durationS * 1000 + 330_000;
const watchdog = setTimeout(() => {
  console.error(`faults: seed ${seed}: the run exceeded its ${budgetMs / 1000}s budget; logs in ${logDir}`);
  void cleanup().finally(() => process.exit(3));
}, budgetMs);
watchdog.unref();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    console.error(`faults: ${sig}, cleaning up; logs in ${logDir}`);
    void cleanup().finally(() => process.exit(130));
  });
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean> | boolean): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return true;
    await sleep(250);
  }
  log(`gave up waiting for ${what} after ${timeoutMs} ms`);
  return false;
}

async function ensureUp(): Promise<void> {
  for (const r of replicas) {
    r.thaw();
    if (r.state === 'down') await r.start().catch((err) => violation('restart', `replica ${r.name}: ${(err as Error).message}`));
  }
}

async function main(): Promise<number> {
  const rng = new Rng(seed);
  log(`seed ${seed}, duration ${durationS}s, ${writerCount} writers, ${perProject} clients per project; logs in ${logDir}`);

  cluster = await Cluster.create();
  const version = (await cluster.query<{ server_version: string }>('SHOW server_version')).rows[0].server_version;
  log(`postgres ${version} on port ${cluster.port} (${cluster.dir})`);

  const horizonStallMs = 2500;
  const daemonEnv = { PGFEED_HEARTBEAT_MS: '2000', PGFEED_POLL_MS: '1000', PGFEED_HORIZON_STALL_MS: String(horizonStallMs) };
  for (const name of ['A', 'B']) {
    replicas.push(new Replica({ name, root, databaseUrl: cluster.url, logDir, env: daemonEnv, onViolation: (w) => violation(/exited/.test(w) ? 'exit' : 'unhandled', w) }));
  }
  // Both at once: migrations must be safe under concurrent start-up.
  await Promise.all(replicas.map((r) => r.start()));
  for (const r of replicas) {
    if ((await r.waitReady(30_000)) === null) throw new Error(`replica ${r.name} never became ready: ${await r.lastReadyz()}; see ${r.logPath}`);
  }
  log(`replicas up: ${replicas.map((r) => `${r.name}@${r.port}`).join(', ')}`);

  await cluster.query(SCHEMA_SQL);
  const ledger = new Ledger();

  // A load balancer in front of both replicas: it keeps to one until a
  // replica-switch fault moves it, or the one it sends to is down.
  const sticky = { current: replicas[0] };
  const front: Front = Object.assign(sticky, { proxy: await startSwitchProxy({ teardown: (fn) => closers.push(fn) }, frontRoute(sticky, replicas)) });
  log(`load balancer on port ${front.proxy.port}`);

  const pool = new Replicas(replicas, rng.fork(), front.proxy.base);
  const sse: SseClient[] = [];
  for (const project of PROJECTS) {
    for (let i = 0; i < perProject; i++) {
      const name = `${project}/${i}`;
      // 1/3 steady, 1/4 slow, 1/4 reconnecting, the rest poll.
      const slot = i % 12;
      const c =
        slot < 4 ? new SseClient(name, 'steady', project, rng.fork(), pool, 10_000)
        : slot < 7 ? new SseClient(name, 'slow', project, rng.fork(), pool, 10_000)
        : slot < 10 ? new SseClient(name, 'reconnecting', project, rng.fork(), pool, 10_000)
        : new PollClient(name, project, rng.fork(), pool);
      // One SSE client and one poller per project filter by type.
      if (slot === 3 || slot === 11) c.types = ['fault_orders.*', 'pr_*'];
      clients.push(c);
      if (c instanceof SseClient) sse.push(c);
    }
  }
  for (const c of clients) c.start();
  // Late joiners: one per project starts at after=now some time into the
  // fault phase, so the "now" path and its hand-over to the ring are judged too.
  for (const project of PROJECTS) {
    const c = new SseClient(`${project}/late`, 'reconnecting', project, rng.fork(), pool, 10_000, 'now');
    clients.push(c);
    sse.push(c);
    lateTimers.push(setTimeout(() => c.start(), rng.int(5, Math.max(6, Math.floor(durationS / 2))) * 1000));
  }
  for (let i = 0; i < writerCount; i++) writers.push(new Writer(i + 1, rng.fork(), cluster, ledger));
  for (const w of writers) w.start();
  log(`${clients.length} clients and ${writers.length} writers running`);
  await sleep(2000);

  const schedule = new FaultSchedule({
    rng: rng.fork(),
    cluster,
    replicas,
    sseClients: sse,
    front,
    ledger,
    readyBoundMs: 30_000,
    horizonStallMs,
    termBoundMs: 15_000,
    violation: (w) => violation(/SIGTERM/.test(w) ? 'sigterm' : /horizon/.test(w) ? 'horizon' : 'not-ready', w),
    log,
  });
  await Promise.all([schedule.run(durationS * 1000, 'main', rng.fork()), schedule.run(durationS * 1000, 'side', rng.fork())]);
  const faults = schedule.records.length;
  log(`fault phase over: ${faults} faults`);

  await Promise.all(writers.map((w) => w.stop()));
  log(`writers stopped: ${ledger.txCommitted} committed, ${ledger.txRolledBack} rolled back, ${ledger.ambiguous.length} ambiguous transactions`);
  await ensureUp();
  for (const r of replicas) {
    if ((await r.waitReady(30_000)) === null) violation('not-ready', `replica ${r.name} not ready after the fault phase: ${await r.lastReadyz()}`);
  }

  const truth = await loadGroundTruth(cluster, ledger, PROJECTS);
  for (const p of truth.problems.slice(0, 20)) violation('capture', p);
  if (truth.problems.length > 20) violation('capture', `... and ${truth.problems.length - 20} more capture problems`);
  log(`ground truth: ${truth.total} events in change_log`);

  // Drain: every client must catch up to its project's history.
  const filtered = new Map<Client, number[]>();
  for (const c of clients) filtered.set(c, truth.byProject.get(c.project)!.filter((seq) => typeMatches(truth.typeOf.get(seq)!, c.types)));
  const expectedFor = {
    get(c: Client): number[] {
      const all = filtered.get(c)!;
      if (!c.fromNow) return all;
      // Its history starts at the first event it received (none yet: nothing is owed).
      const at = c.seqs.length ? all.indexOf(c.seqs[0]) : all.length;
      return at >= 0 ? all.slice(at) : all;
    },
  };
  const behind = () => clients.filter((c) => new Set(c.seqs).size < expectedFor.get(c)!.length);
  let lastReport = 0;
  await waitFor('clients to catch up', 120_000, () => {
    const b = behind();
    if (Date.now() - lastReport > 10_000) {
      lastReport = Date.now();
      log(`drain: ${b.length} clients behind${b.length ? ` (e.g. ${b[0].name}: ${new Set(b[0].seqs).size}/${expectedFor.get(b[0])!.length})` : ''}`);
    }
    return b.length === 0;
  });
  // Give in-flight duplicates a moment to show up before judging.
  await sleep(1500);
  await Promise.all(clients.map((c) => c.stop()));
  log('clients disconnected');

  let leakedResources = 0;
  const gaugesZero = async (when: string) => {
    let last = '';
    const ok = await waitFor(`pgfeed_subscribers to reach 0 (${when})`, 15_000, async () => {
      const g = await Promise.all(replicas.map((r) => r.subscribers()));
      last = g.map((x, i) => `${replicas[i].name}: ${x ? x.text : 'unreachable'}`).join(' | ');
      return g.every((x) => x !== null && x.total === 0);
    });
    if (!ok) {
      leakedResources++;
      violation('leak', `subscriber gauges not 0 ${when}: ${last}`);
    }
  };
  await gaugesZero('after all clients left');

  // Memory: churn many short streams through each replica and make sure RSS
  // returns near the level measured after a first warm-up wave. Churn streams
  // start at after=now: this measures what a subscriber leaves behind, not the
  // buffers of a full-history catch-up.
  const churnRng = rng.fork();
  let baseline: number[] = [];
  const waves = 4;
  for (let wave = 0; wave < waves; wave++) {
    const burst: SseClient[] = [];
    for (let i = 0; i < 150; i++) {
      burst.push(new SseClient(`churn${wave}/${i}`, churnRng.chance(0.2) ? 'slow' : 'steady', churnRng.pick(PROJECTS), churnRng.fork(), pool, 10_000, 'now'));
    }
    for (const c of burst) c.start();
    await sleep(1500);
    await Promise.all(burst.map((c) => c.stop()));
    if (wave === 0) {
      await gaugesZero('after the warm-up wave');
      await sleep(1000);
      baseline = replicas.map((r) => r.rss());
    }
  }
  await gaugesZero('after the churn');
  const limit = (b: number) => b * 1.25 + 48 * 1024 * 1024;
  const settled = await waitFor('RSS to settle', 15_000, () => replicas.every((r, i) => r.rss() <= limit(baseline[i])));
  if (!settled) {
    replicas.forEach((r, i) => {
      if (r.rss() > limit(baseline[i])) {
        leakedResources++;
        violation('leak', `replica ${r.name} RSS ${(r.rss() / 2 ** 20).toFixed(0)} MiB after ${(waves - 1) * 150} streams came and went, baseline ${(baseline[i] / 2 ** 20).toFixed(0)} MiB`);
      }
    });
  }
  log(`RSS: ${replicas.map((r, i) => `${r.name} ${(baseline[i] / 2 ** 20).toFixed(0)} -> ${(r.rss() / 2 ** 20).toFixed(0)} MiB`).join(', ')}`);

  let lost = 0;
  let duplicated = 0;
  let misordered = 0;
  let leaked = leakedResources;
  const descriptions: string[] = [];
  for (const c of clients) {
    const v = checkClient(c, expectedFor.get(c)!, truth.xidOf);
    lost += v.lost;
    duplicated += v.duplicated;
    misordered += v.misordered;
    leaked += v.leaked;
    descriptions.push(...v.description);
    for (const p of c.protocol.slice(0, 3)) violation('protocol', `${c.name}: ${p}`);
  }
  for (const d of descriptions.slice(0, 30)) console.log(`  ${d}`);
  if (descriptions.length > 30) console.log(`  ... and ${descriptions.length - 30} more`);

  const kinds = new Map<string, number>();
  for (const f of schedule.records) kinds.set(f.kind, (kinds.get(f.kind) ?? 0) + 1);
  log(`faults by kind: ${FAULT_KINDS.map((k) => `${k}=${kinds.get(k) ?? 0}`).join(' ')}`);
  const controls = new Map<string, number>();
  for (const c of clients) for (const [t, n] of c.controls) controls.set(t, (controls.get(t) ?? 0) + n);
  if (controls.size) log(`control events seen: ${[...controls].map(([t, n]) => `${t}=${n}`).join(' ')}`);
  const stale = clients.reduce((n, c) => n + c.stats.stale, 0);
  const connects = clients.reduce((n, c) => n + c.connects, 0);
  log(`client connections: ${connects}, idle-timeout reconnects: ${stale}`);

  const failed = lost + duplicated + misordered + leaked > 0 || violations.size > 0;
  if (violations.size > 0) {
    console.log(`recovery: ${[...violations].map(([k, v]) => `${k}: ${v.length}`).join(', ')}`);
  }
  if (failed) console.log(`FAILED with seed ${seed} (rerun: npm run test:faults -- --seed ${seed} --duration ${durationS}); logs kept in ${logDir}`);
  const count = (k: string) => kinds.get(k) ?? 0;
  console.log(`faults: ${faults} (replica switches: ${count('replica-switch')}, replica kills: ${count('replica-kill')}), events: ${truth.total}, clients: ${clients.length}, lost: ${lost}, duplicated: ${duplicated}, misordered: ${misordered}, leaked: ${leaked}`);
  return failed ? 1 : 0;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  console.error(`faults: seed ${seed}: the run itself failed: ${(err as Error).stack ?? err}`);
  console.error(`faults: logs kept in ${logDir}`);
  code = 2;
} finally {
  await cleanup();
  clearTimeout(watchdog);
}
if (code === 0 && !args['keep-logs']) rmSync(logDir, { recursive: true, force: true });
process.exit(code);
