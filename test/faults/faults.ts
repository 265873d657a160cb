// The fault schedule: a seeded sequence of faults, drawn from a bag so that
// every kind occurs several times per run, with short random gaps. Each fault
// also asserts the recovery property that belongs to it.

import type { Cluster } from './cluster.js';
import type { SseClient } from './clients.js';
import type { Replica } from './daemon-process.js';
import { sleep, type Rng } from './rng.js';
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
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultContext {
  rng: Rng;
  cluster: Cluster;
  replicas: Replica[];
  sseClients: SseClient[];
  ledger: Ledger;
  /** /readyz must answer 200 within this long after the fault ends. */
  readyBoundMs: number;
  /** SIGTERM must end the process, with exit code 0, within this long. */
  termBoundMs: number;
  violation: (what: string) => void;
  log: (what: string) => void;
}

export interface FaultRecord {
  kind: FaultKind;
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
      const hold = rng.int(1500, 6000);
      const outcome = await longTransaction(ctx.cluster, rng, ctx.ledger, hold);
      return `held the xmin horizon ${hold}ms, then ${outcome}; ${await assertReady(ctx, kind)}`;
    }
    case 'quiet-burst': {
      const n = await quietBurst(ctx.cluster, rng, ctx.ledger);
      return `${n} rows without NOTIFY`;
    }
    case 'client-stall': {
      const victims = ctx.sseClients.length ? [rng.pick(ctx.sseClients), rng.pick(ctx.sseClients)] : [];
      const ms = rng.int(3000, 12000);
      for (const c of victims) c.stall(ms);
      // A stall is worth most under load: follow it with a burst.
      const n = await quietBurst(ctx.cluster, rng, ctx.ledger);
      return `${victims.map((c) => c.name).join('+')} stalled ${ms}ms during a ${n}-row burst`;
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

  /** Inject faults until `durationMs` has passed (the fault in flight finishes). */
  async run(durationMs: number): Promise<void> {
    const { rng } = this.ctx;
    const until = Date.now() + durationMs;
    let bag: FaultKind[] = [];
    for (let i = 0; i < 10_000 && !this.stopped && Date.now() < until; i++) {
      if (bag.length === 0) bag = rng.shuffle([...FAULT_KINDS]);
      const kind = bag.pop()!;
      const start = Date.now();
      let detail: string;
      try {
        detail = await inject(this.ctx, kind);
      } catch (err) {
        // A fault's own database work can be cut short by Postgres being
        // down; that is not a pgfeed failure, but say what happened.
        detail = `fault ended early: ${(err as Error).message}`;
      }
      // A restart that failed leaves a replica down; bring it back so the
      // next fault starts from a running system.
      for (const r of this.ctx.replicas) {
        if (r.state === 'down') await r.start().catch((err) => this.ctx.violation(`replica ${r.name} failed to restart: ${(err as Error).message}`));
      }
      const rec = { kind, at: start - this.t0, ms: Date.now() - start, detail };
      this.records.push(rec);
      this.ctx.log(`fault #${this.records.length} ${kind} (+${(rec.at / 1000).toFixed(1)}s, ${rec.ms}ms): ${detail}`);
      await sleep(rng.int(200, 1500));
    }
  }
}
