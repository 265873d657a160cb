// Parent side of the load generator: spreads streams over worker processes
// and source addresses, and merges their stats, checks and histograms.

import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as hdr from 'hdr-histogram-js';
import { satisfied, waitUntil } from '../../test/helpers/wait.js';
import type { ClientSpec } from './load-client.js';
import type { WorkerCheck, WorkerReply, WorkerRequest, WorkerStats } from './load-protocol.js';

const WORKER = fileURLToPath(new URL('./load-worker.ts', import.meta.url));

// One source address gives ~28k ephemeral ports towards one destination;
// stay well under that per address.
const STREAMS_PER_ADDRESS = 20_000;
// Each worker process stays far below its 20,000-descriptor limit.
const STREAMS_PER_WORKER = 6_000;

type Req = WorkerRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

class WorkerHandle {
  private seq = 0;
  private pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  readonly proc: ChildProcess;

  constructor() {
    this.proc = fork(WORKER, [], {
      execArgv: ['--import', 'tsx'],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.proc.on('message', (m: WorkerReply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(m.error));
    });
    this.proc.on('exit', () => {
      for (const p of this.pending.values()) p.reject(new Error('load worker exited'));
      this.pending.clear();
    });
  }

  call<T>(req: Req): Promise<T> {
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ ...req, id } as WorkerRequest);
    });
  }
}

export type GeneratorStats = WorkerStats;

export interface GeneratorCheck extends Omit<WorkerCheck, 'histogram'> {
  histogram: hdr.Histogram;
}

export class LoadGenerator {
  private workers: WorkerHandle[] = [];
  /** Every stream opened, for the deliveries they are owed. */
  private opened: ClientSpec[] = [];

  constructor(private readonly opts: { host: string; port: number; totalStreams: number }) {
    const n = Math.max(2, Math.ceil(opts.totalStreams / STREAMS_PER_WORKER));
    for (let i = 0; i < n; i++) this.workers.push(new WorkerHandle());
  }

  /** Worker process ids, for CPU accounting of the generator itself. */
  get pids(): number[] {
    return this.workers.flatMap((w) => (w.proc.pid === undefined ? [] : [w.proc.pid]));
  }

  /**
   * Source addresses 127.0.0.1, .2, ... once one address runs out of ports;
   * none below that, because binding before connect makes the kernel search
   * for a port unused by any bound socket, which slows down every connect.
   */
  private addresses(): string[] {
    const k = Math.ceil(this.opts.totalStreams / STREAMS_PER_ADDRESS);
    return k <= 1 ? [] : Array.from({ length: k }, (_, i) => `127.0.0.${i + 1}`);
  }

  /** Opens the streams (round-robin over workers); resolves once each got a response or failed. */
  async open(streams: ClientSpec[], reconnect = true): Promise<{ open: number; failed: number }> {
    this.opened.push(...streams);
    const parts: ClientSpec[][] = this.workers.map(() => []);
    streams.forEach((s, i) => parts[i % parts.length].push(s));
    const addrs = this.addresses();
    const res = await Promise.all(
      this.workers.map((w, i) =>
        w.call<{ open: number; failed: number }>({
          cmd: 'open',
          host: this.opts.host,
          port: this.opts.port,
          // Offset per worker so every address is used even with few workers.
          localAddresses: addrs.map((_, j) => addrs[(i + j) % addrs.length]),
          streams: parts[i],
          reconnect,
        }),
      ),
    );
    return { open: sum(res.map((r) => r.open)), failed: sum(res.map((r) => r.failed)) };
  }

  async stats(since = 0): Promise<GeneratorStats> {
    const all = await Promise.all(this.workers.map((w) => w.call<WorkerStats>({ cmd: 'stats', since })));
    const statuses: Record<string, number> = {};
    for (const s of all) for (const [k, v] of Object.entries(s.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
    return {
      streams: sum(all.map((s) => s.streams)),
      open: sum(all.map((s) => s.open)),
      openSince: sum(all.map((s) => s.openSince)),
      lastOpenAt: Math.max(0, ...all.map((s) => s.lastOpenAt)),
      deliveries: sum(all.map((s) => s.deliveries)),
      lastEventAt: Math.max(0, ...all.map((s) => s.lastEventAt)),
      disconnects: sum(all.map((s) => s.disconnects)),
      failures: sum(all.map((s) => s.failures)),
      statuses,
    };
  }

  /**
   * Waits, bounded, until the deliveries since measure() reach what the
   * streams opened are owed: every event of `expected` for its project. A
   * server that falls behind is measured as it is: the wait also ends after
   * `stallMs` without a new delivery, and what never came counts as lost.
   */
  async drain(expected: Record<string, number[]>, o: { timeoutMs: number; stallMs: number }): Promise<{ drained: boolean; deliveries: number; expected: number }> {
    let owed = 0;
    for (const s of this.opened) owed += expected[s.project]?.length ?? 0;
    const { reached: drained, deliveries } = await this.deliveriesReach(owed, { ...o, what: 'the drain' });
    return { drained, deliveries, expected: owed };
  }

  /**
   * Waits until the streams' deliveries since measure() reach `owed`; false
   * (not an error) at `timeoutMs`, or after `stallMs` without a new delivery.
   */
  async deliveriesReach(owed: number, o: { timeoutMs: number; stallMs: number; what: string; intervalMs?: number }): Promise<{ reached: boolean; deliveries: number }> {
    let deliveries = 0;
    const reached = await satisfied(
      waitUntil(
        async () => {
          deliveries = (await this.stats()).deliveries;
          return deliveries >= owed;
        },
        o.timeoutMs,
        o.what,
        { stallMs: o.stallMs, progressOf: () => deliveries, intervalMs: o.intervalMs ?? 100 },
      ),
    );
    return { reached, deliveries };
  }

  /** Resets delivery counts and latency histograms: the measured window starts now. */
  async measure(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.call({ cmd: 'measure' })));
  }

  async check(expected: Record<string, number[]>): Promise<GeneratorCheck> {
    const all = await Promise.all(this.workers.map((w) => w.call<WorkerCheck>({ cmd: 'check', expected })));
    const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
    for (const c of all) h.add(hdr.decodeFromCompressedBase64(c.histogram));
    return {
      expected: sum(all.map((c) => c.expected)),
      received: sum(all.map((c) => c.received)),
      lost: sum(all.map((c) => c.lost)),
      duplicated: sum(all.map((c) => c.duplicated)),
      misordered: sum(all.map((c) => c.misordered)),
      badStreams: sum(all.map((c) => c.badStreams)),
      holes: sum(all.map((c) => c.holes)),
      badExamples: all.flatMap((c) => c.badExamples),
      histogram: h,
    };
  }

  async close(): Promise<void> {
    await Promise.all(
      this.workers.map(async (w) => {
        const exited = new Promise<void>((r) => (w.proc.exitCode !== null ? r() : w.proc.once('exit', () => r())));
        await w.call({ cmd: 'close' }).catch(() => {});
        const t = setTimeout(() => w.proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }),
    );
    this.workers = [];
  }
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}
