// The fault schedule: a seeded sequence of faults, drawn from a bag so that
// every kind occurs several times per run, with short random gaps. Each fault
// also asserts the recovery property that belongs to it.

import type { Cluster } from '../helpers/pg-cluster.js';
import type { SwitchProxy } from '../helpers/switch-proxy.js';
import type { SseClient } from './clients.js';
import { httpGet, type Replica } from './daemon-process.js';
import { sleep } from '../helpers/wait.js';
import type { Rng } from './rng.js';
import { longTransaction, quietBurst, type Ledger } from './writers.js';

export const FAULT_KINDS = [
  'sigkill',
  'sigterm',
  'sigstop',
  'pg-restart-fast',
  'pg-restart-immediate',
  'terminate-listen',
  'terminate-query',
  'long-transaction',
  'quiet-burst',
  'client-stall',
  'cold-start',
  'start-race',
  'replica-switch',
  'replica-kill',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
/** Faults that may overlap anything else, including a daemon restart. */
const SIDE_KINDS: readonly FaultKind[] = ['quiet-burst', 'client-stall', 'terminate-query'];

export interface FaultContext {
  rng: Rng;
  cluster: Cluster;
  replicas: Replica[];
  sseClients: SseClient[];
  /** The load balancer in front of the replicas: it sends new connections to `front.current`, or to another replica while that one is down. */
  front: Front;
  ledger: Ledger;
  /** /readyz must answer 200 within this long after the fault ends. */
  readyBoundMs: number;
  /** The replicas' PGFEED_HORIZON_STALL_MS. */
  horizonStallMs: number;
  /** SIGTERM must end the process, with exit code 0, within this long. */
  termBoundMs: number;
  violation: (what: string) => void;
  log: (what: string) => void;
}

export interface Front {
  readonly proxy: SwitchProxy;
  current: Replica;
}

/** The load balancer's choice for a new connection: its current replica while that is up, else another that is (null: none). */
export function frontRoute(front: { current: Replica }, replicas: readonly Replica[]): () => number | null {
  return () => {
    if (front.current.url() === null) front.current = replicas.find((r) => r.url() !== null) ?? front.current;
    return front.current.url() === null ? null : front.current.port;
  };
}

export interface FaultRecord {
  kind: FaultKind;
  lane: 'main' | 'side';
  at: number;
  ms: number;
  detail: string;
}

/** Wait until every replica that should be up answers /readyz; report any that does not. */
async function assertReady(ctx: FaultContext, after: string): Promise<string> {
  const times = await Promise.all(
    ctx.replicas.map(async (r) => {
      const ms = await r.waitReady(ctx.readyBoundMs);
      if (ms === null) ctx.violation(`replica ${r.name} not ready ${ctx.readyBoundMs} ms after ${after}; /readyz said: ${await r.lastReadyz()}`);
      return `${r.name}:${ms ?? 'timeout'}ms`;
    }),
  );
  return `ready ${times.join(' ')}`;
}

/** While a transaction pins the horizon past the stall threshold, every
 *  replica's /readyz must stay 200 (the stall is the database's, not the
 *  replica's), report it in `degraded` and name that backend as the blocker. */
async function assertStalled(ctx: FaultContext, pid: number): Promise<string> {
  const seen: string[] = [];
  for (const r of ctx.replicas) {
    const url = r.url();
    if (!url || r.state !== 'up') continue;
    let status = 0;
    let body: { horizon?: { stalled?: boolean; blocker?: { pid?: number | null } | null }; degraded?: { reason?: string }[] } = {};
    try {
      const res = await httpGet(`${url}/readyz`, 3000);
      status = res.status;
      body = JSON.parse(res.body);
    } catch (err) {
      ctx.violation(`replica ${r.name}: /readyz unreadable while the horizon was held: ${(err as Error).message}`);
      continue;
    }
    const blocker = body.horizon?.blocker?.pid;
    const reported = body.degraded?.some((d) => d.reason === 'horizon_stalled') === true;
    if (status !== 200 || body.horizon?.stalled !== true || !reported || blocker !== pid) {
      ctx.violation(`replica ${r.name}: horizon held by pid ${pid} past the stall threshold, but /readyz said ${status} stalled=${body.horizon?.stalled} degraded=${reported} blocker pid=${blocker}`);
    }
    seen.push(`${r.name}:${status} blocker=${blocker}`);
  }
  return `stall reported ${seen.join(' ')}`;
}

function targets(ctx: FaultContext): Replica[] {
  // Mostly one replica, sometimes both at once, so that clients have nowhere to go.
  return ctx.rng.chance(0.15) ? ctx.replicas : [ctx.rng.pick(ctx.replicas)];
}

async function restartAfter(ctx: FaultContext, r: Replica, signal: 'SIGKILL' | 'SIGTERM'): Promise<string> {
  const exit = await r.kill(signal, signal === 'SIGTERM' ? ctx.termBoundMs : 10_000);
  let detail = `${r.name} ${signal}: exit code=${exit.code} signal=${exit.signal} in ${exit.ms}ms`;
  if (signal === 'SIGTERM') {
    if (exit.timedOut) ctx.violation(`replica ${r.name} did not exit within ${ctx.termBoundMs} ms of SIGTERM (killed); see ${r.logPath}`);
    else if (exit.code !== 0) ctx.violation(`replica ${r.name} exited with code ${exit.code} (signal ${exit.signal}) on SIGTERM, expected 0; see ${r.logPath}`);
  }
  await sleep(ctx.rng.int(0, 800));
  await r.start();
  detail += `, restarted as #${r.incarnation}`;
  return detail;
}

async function terminateBackends(ctx: FaultContext, app: string): Promise<string> {
  const r = await ctx.cluster.query<{ pid: number; ok: boolean }>(
    'SELECT pid, pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1',
    [app],
  );
  return `terminated ${r.rows.filter((x) => x.ok).length} ${app} backends`;
}

async function inject(ctx: FaultContext, kind: FaultKind): Promise<string> {
  const { rng } = ctx;
  switch (kind) {
    case 'sigkill':
    case 'sigterm': {
      const sig = kind === 'sigkill' ? 'SIGKILL' : 'SIGTERM';
      const parts = await Promise.all(targets(ctx).map((r) => restartAfter(ctx, r, sig)));
      return `${parts.join('; ')}; ${await assertReady(ctx, kind)}`;
    }
    case 'sigstop': {
      const hit = targets(ctx);
      const ms = rng.int(500, 4000);
      for (const r of hit) r.freeze();
      await sleep(ms);
      for (const r of hit) r.thaw();
      return `${hit.map((r) => r.name).join('+')} stopped ${ms}ms; ${await assertReady(ctx, kind)}`;
    }
    case 'pg-restart-fast':
    case 'pg-restart-immediate': {
      const t0 = Date.now();
      await ctx.cluster.restart(kind === 'pg-restart-fast' ? 'fast' : 'immediate');
      return `postgres back in ${Date.now() - t0}ms; ${await assertReady(ctx, kind)}`;
    }
    case 'terminate-listen': {
      const d = await terminateBackends(ctx, 'pgfeed:listen');
      return `${d}; ${await assertReady(ctx, kind)}`;
    }
    case 'terminate-query': {
      const d = await terminateBackends(ctx, 'pgfeed:query');
      return `${d}; ${await assertReady(ctx, kind)}`;
    }
    case 'long-transaction': {
      const hold = rng.int(1500, 7000);
      // Held longer than the stall threshold, /readyz must say so and name the blocking backend.
      const probeAt = ctx.horizonStallMs + 1500;
      let seen = '';
      const probe = hold > probeAt + 500 ? { atMs: probeAt, run: async (pid: number) => {
        seen = await assertStalled(ctx, pid);
      } } : undefined;
      const outcome = await longTransaction(ctx.cluster, rng, ctx.ledger, hold, probe);
      return `held the xmin horizon ${hold}ms, then ${outcome}${seen ? `; ${seen}` : ''}; ${await assertReady(ctx, kind)}`;
    }
    case 'quiet-burst': {
      const n = await quietBurst(ctx.cluster, rng, ctx.ledger);
      return `${n} rows without NOTIFY`;
    }
    case 'cold-start': {
      // "If Postgres is down at start it retries until it comes up."
      const r = rng.pick(ctx.replicas);
      await r.kill('SIGKILL');
      await ctx.cluster.stop('fast');
      const down = rng.int(300, 2500);
      let starting: Promise<void>;
      try {
        starting = r.start(90_000);
        starting.catch(() => {}); // awaited below; a failure must not go unhandled meanwhile
        await sleep(down);
      } finally {
        await ctx.cluster.start();
      }
      await starting;
      return `${r.name} started while postgres was down for ${down}ms, restarted as #${r.incarnation}; ${await assertReady(ctx, kind)}`;
    }
    case 'start-race': {
      // Postgres goes away in the middle of a replica's start-up (migrations, first reads).
      const r = rng.pick(ctx.replicas);
      await r.kill('SIGKILL');
      const mode = rng.pick(['fast', 'immediate'] as const);
      const delay = rng.int(0, 400);
      const starting = r.start(90_000);
      starting.catch(() => {}); // awaited below; a failure must not go unhandled meanwhile
      await sleep(delay);
      await ctx.cluster.restart(mode);
      await starting;
      return `${r.name} restarted as #${r.incarnation} with a ${mode} postgres restart ${delay}ms into its start-up; ${await assertReady(ctx, kind)}`;
    }
    case 'replica-switch': {
      // A deploy or a rebalance: new connections go elsewhere, open ones are cut.
      const { front } = ctx;
      const from = front.current;
      front.current = rng.pick(ctx.replicas.filter((r) => r !== from));
      const open = front.proxy.openTo.length;
      front.proxy.dropAll();
      return `proxy switched ${from.name} -> ${front.current.name}, cut ${open} connections`;
    }
    case 'replica-kill': {
      // The replica behind the proxy dies and stays down a while: clients reconnect to the other.
      const victim = ctx.front.current;
      const sent = ctx.front.proxy.connections.length;
      await victim.kill('SIGKILL');
      const down = rng.int(1000, 3000);
      await sleep(down);
      const elsewhere = ctx.front.proxy.connections.slice(sent).filter((p) => p !== null).length;
      await victim.start();
      return `${victim.name} SIGKILLed, down ${down}ms (the proxy sent ${elsewhere} connections to ${ctx.front.current.name}), restarted as #${victim.incarnation}; ${await assertReady(ctx, kind)}`;
    }
    case 'client-stall': {
      if (ctx.sseClients.length === 0) return 'no SSE client to stall';
      const first = rng.pick(ctx.sseClients);
      const victims = [first, rng.pick(ctx.sseClients.filter((c) => c.project === first.project))];
      const ms = rng.int(3000, 12000);
      for (const c of victims) c.stall(ms);
      // A stall is worth most under load: follow it with megabytes for the
      // victims' project, enough to fill loopback socket buffers so that the
      // daemon sees backpressure and pauses the subscriber.
      let n = 0;
      for (let i = 0; i < 3; i++) n += await quietBurst(ctx.cluster, rng, ctx.ledger, { project: first.project, big: true });
      await sleep(500);
      const paused = await Promise.all(ctx.replicas.map((r) => r.gauge('pgfeed_subscribers', 'state="paused"')));
      return `${victims.map((c) => c.name).join('+')} stalled ${ms}ms during a ${n}-row burst; paused subscribers ${ctx.replicas.map((r, i) => `${r.name}:${paused[i] ?? '?'}`).join(' ')}`;
    }
  }
}

export class FaultSchedule {
  readonly records: FaultRecord[] = [];
  private stopped = false;
  private readonly ctx: FaultContext;
  private readonly t0 = Date.now();

  constructor(ctx: FaultContext) {
    this.ctx = ctx;
  }

  stop(): void {
    this.stopped = true;
  }

  /** Inject faults until `durationMs` has passed (the fault in flight finishes).
   *  The main lane draws every kind and owns replica restarts; a side lane
   *  overlaps it with faults that need no exclusive control of a process. */
  async run(durationMs: number, lane: 'main' | 'side', rng: Rng): Promise<void> {
    const kinds: readonly FaultKind[] = lane === 'main' ? FAULT_KINDS : SIDE_KINDS;
    const gap: [number, number] = lane === 'main' ? [200, 1500] : [2000, 8000];
    const until = Date.now() + durationMs;
    let bag: FaultKind[] = [];
    if (lane === 'side') await sleep(rng.int(...gap));
    for (let i = 0; i < 10_000 && !this.stopped && Date.now() < until; i++) {
      if (bag.length === 0) bag = rng.shuffle([...kinds]);
      const kind = bag.pop()!;
      const start = Date.now();
      let detail: string;
      try {
        detail = await inject({ ...this.ctx, rng }, kind);
      } catch (err) {
        // A fault's own database work can be cut short by Postgres being
        // down; that is not a pgfeed failure, but say what happened.
        detail = `fault ended early: ${(err as Error).message}`;
      }
      // A restart that failed leaves a replica down; bring it back so the
      // next fault starts from a running system.
      if (lane === 'main' && !this.ctx.cluster.isRunning) await this.ctx.cluster.start().catch((err) => this.ctx.log(`postgres start after a failed fault: ${(err as Error).message}`));
      for (const r of lane === 'main' ? this.ctx.replicas : []) {
        if (r.state === 'down') await r.start().catch((err) => this.ctx.violation(`replica ${r.name} failed to restart: ${(err as Error).message}`));
      }
      const rec = { kind, lane, at: start - this.t0, ms: Date.now() - start, detail };
      this.records.push(rec);
      this.ctx.log(`fault #${this.records.length} ${kind}${lane === 'side' ? ' (side)' : ''} (+${(rec.at / 1000).toFixed(1)}s, ${rec.ms}ms): ${detail}`);
      await sleep(rng.int(...gap));
    }
  }
}
