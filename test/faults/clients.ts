// Subscribers over real sockets. Each client records every event it was handed,
// in arrival order, across however many connections it needed; the checker
// compares that record with the committed history of its project.

import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { SseDecoder } from '../helpers/sse-decoder.js';
import { httpGet, type HttpResult, type Replica } from './daemon-process.js';
import { sleep } from '../helpers/wait.js';
import type { Rng } from './rng.js';

export type ClientKind = 'steady' | 'slow' | 'reconnecting' | 'poll';

export interface FeedEvent {
  seq: number | string;
  xid?: string;
  project: string;
  type: string;
}

/** Shared by all clients: where to connect. Half the time the load
 *  balancer in front of the replicas (`front`), otherwise any replica that is
 *  up, because the design says any replica resumes any cursor. */
export class Replicas {
  readonly list: Replica[];
  private readonly rng: Rng;
  private readonly front: string;
  constructor(list: Replica[], rng: Rng, front: string) {
    this.list = list;
    this.rng = rng;
    this.front = front;
  }
  async pick(stop: () => boolean): Promise<string | null> {
    for (let i = 0; i < 60_000 / 50 && !stop(); i++) {
      const up = this.list.map((r) => r.url()).filter((u): u is string => u !== null);
      if (up.length > 0) return this.rng.chance(0.5) ? this.front : this.rng.pick(up);
      await sleep(50);
    }
    return null;
  }
}

/** Does `type` pass a `types=` filter (exact names or `prefix*` globs)? */
export function typeMatches(type: string, patterns: readonly string[] | null): boolean {
  if (!patterns) return true;
  return patterns.some((p) => (p.endsWith('*') ? type.startsWith(p.slice(0, -1)) : type === p));
}

export interface ClientRecord {
  name: string;
  kind: ClientKind;
  project: string;
  /** The types= filter, or null for every type. */
  types: string[] | null;
  /** Started at after=now: its history begins with the first event it got. */
  readonly fromNow: boolean;
  /** Seqs of non-control events in arrival order. */
  seqs: number[];
  /** For each entry of seqs, the connection (1-based) that delivered it. */
  connOf: number[];
  /** One line per connection: where it went and from which cursor. */
  history: string[];
  /** Events whose project was not the client's. */
  foreign: Array<{ seq: number; project: string }>;
  controls: Map<string, number>;
  protocol: string[];
  connects: number;
  stats: { statuses: Map<number, number>; stale: number; errors: number; stalls: number };
}

abstract class BaseClient implements ClientRecord {
  readonly name: string;
  readonly kind: ClientKind;
  readonly project: string;
  types: string[] | null = null;
  fromNow = false;
  readonly seqs: number[] = [];
  readonly connOf: number[] = [];
  readonly history: string[] = [];
  readonly foreign: Array<{ seq: number; project: string }> = [];
  readonly controls = new Map<string, number>();
  readonly protocol: string[] = [];
  connects = 0;
  readonly stats = { statuses: new Map<number, number>(), stale: 0, errors: 0, stalls: 0 };
  protected stopped = false;
  protected readonly rng: Rng;
  protected readonly replicas: Replicas;
  private done: Promise<void> | null = null;

  constructor(name: string, kind: ClientKind, project: string, rng: Rng, replicas: Replicas) {
    this.name = name;
    this.kind = kind;
    this.project = project;
    this.rng = rng;
    this.replicas = replicas;
  }

  start(): void {
    this.done = this.loop().catch((err) => {
      this.protocol.push(`client loop crashed: ${String(err)}`);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort();
    await this.done;
  }

  protected abstract loop(): Promise<void>;
  protected abstract abort(): void;

  protected note(problem: string): void {
    if (this.protocol.length < 20) this.protocol.push(problem);
  }

  protected status(code: number): void {
    this.stats.statuses.set(code, (this.stats.statuses.get(code) ?? 0) + 1);
  }

  /** Record one delivered event; returns its seq for cursor keeping. */
  protected accept(ev: FeedEvent, frameId: string | null): void {
    if (typeof ev.type === 'string' && ev.type.startsWith('pgfeed.')) {
      this.controls.set(ev.type, (this.controls.get(ev.type) ?? 0) + 1);
      return;
    }
    const seq = Number(ev.seq);
    if (!Number.isSafeInteger(seq)) {
      this.note(`event without a numeric seq: ${JSON.stringify(ev).slice(0, 200)}`);
      return;
    }
    if (frameId !== null && frameId !== String(seq)) this.note(`frame id ${frameId} differs from data.seq ${seq}`);
    if (ev.project !== this.project) {
      this.foreign.push({ seq, project: ev.project });
      return;
    }
    if (!typeMatches(ev.type, this.types)) this.note(`seq ${seq} of type ${ev.type} passed the filter types=${this.types?.join(',')}`);
    this.seqs.push(seq);
    this.connOf.push(this.connects);
  }
}

/** An SSE subscriber. Kinds differ in how they misbehave:
 *  steady reads everything; slow stops reading for seconds at a time;
 *  reconnecting drops the connection at random and resumes. */
export class SseClient extends BaseClient {
  private req: ClientRequest | null = null;
  private res: IncomingMessage | null = null;
  private lastId: string | null = null;
  private stallUntil = 0;
  private readonly idleMs: number;

  /** The after= of the first connection: '0' for all history, 'now' for new events only. */
  private readonly firstAfter: string;

  constructor(name: string, kind: Exclude<ClientKind, 'poll'>, project: string, rng: Rng, replicas: Replicas, idleMs: number, firstAfter = '0') {
    super(name, kind, project, rng, replicas);
    this.idleMs = idleMs;
    this.firstAfter = firstAfter;
    this.fromNow = firstAfter === 'now';
  }

  protected abort(): void {
    this.req?.destroy();
  }

  /** Stop reading for `ms` (the fault "a client that stalls"). */
  stall(ms: number): void {
    this.stats.stalls++;
    this.stallUntil = Date.now() + ms;
    const res = this.res;
    if (res) {
      res.pause();
      setTimeout(() => {
        if (this.res === res) res.resume();
      }, ms).unref();
    }
  }

  protected async loop(): Promise<void> {
    let backoff = 50;
    while (!this.stopped) {
      const base = await this.replicas.pick(() => this.stopped);
      if (!base || this.stopped) return;
      const ok = await this.connectOnce(base);
      if (this.stopped) return;
      backoff = ok ? 50 : Math.min(backoff * 2, 1000);
      await sleep(this.rng.int(backoff / 2, backoff));
    }
  }

  /** One connection, until it ends. Returns whether it got a 200. */
  private connectOnce(base: string): Promise<boolean> {
    return new Promise((resolve) => {
      const headers: Record<string, string> = { Accept: 'text/event-stream' };
      // EventSource style (same URL, Last-Event-ID header) most of the time;
      // sometimes carry the cursor in after= instead, as a server-side poller would.
      let after = this.firstAfter;
      if (this.lastId !== null) {
        if (this.rng.chance(0.7)) headers['Last-Event-ID'] = this.lastId;
        else after = this.lastId;
      }
      const types = this.types ? `&types=${encodeURIComponent(this.types.join(','))}` : '';
      const url = `${base}/v1/events?project=${encodeURIComponent(this.project)}&after=${after}${types}`;
      this.connects++;
      this.history.push(`#${this.connects} ${base} ${headers['Last-Event-ID'] ? `Last-Event-ID: ${headers['Last-Event-ID']}` : `after=${after}`} at ${new Date().toISOString()}`);
      let settled = false;
      const finish = (ok: boolean) => {
        if (settled) return;
        settled = true;
        clearInterval(idle);
        clearTimeout(drop);
        clearTimeout(slowTimer);
        this.res = null;
        this.req = null;
        resolve(ok);
      };
      let lastByte = Date.now();
      let got200 = false;
      const idle = setInterval(() => {
        if (this.res?.isPaused() || Date.now() < this.stallUntil) {
          lastByte = Date.now();
          return;
        }
        if (Date.now() - lastByte > this.idleMs) {
          // Not even a heartbeat: treat the connection as dead, as EventSource would.
          this.stats.stale++;
          req.destroy();
        }
      }, 500);
      let drop: NodeJS.Timeout | undefined;
      let slowTimer: NodeJS.Timeout | undefined;
      const req = request(url, { agent: false, headers }, (res) => {
        this.res = res;
        this.status(res.statusCode ?? 0);
        if (res.statusCode !== 200) {
          res.resume();
          res.on('end', () => finish(false));
          res.on('error', () => finish(false));
          return;
        }
        got200 = true;
        const ctype = String(res.headers['content-type'] ?? '');
        if (!ctype.startsWith('text/event-stream')) this.note(`content-type ${ctype}`);
        let first = true;
        const parser = new SseDecoder({ onEvent: (ev) => {
          if (first && parser.retry === null) this.note('first frame was not retry:');
          first = false;
          let parsed: FeedEvent;
          try {
            parsed = JSON.parse(ev.data) as FeedEvent;
          } catch {
            this.note(`unparseable data: ${ev.data.slice(0, 120)}`);
            return;
          }
          if (ev.event !== parsed.type && !parsed.type?.startsWith('pgfeed.')) this.note(`event: ${ev.event} but data.type ${parsed.type}`);
          this.accept(parsed, ev.id);
          if (ev.id !== null) this.lastId = ev.id;
        } });
        res.on('data', (chunk: Buffer) => {
          lastByte = Date.now();
          parser.push(chunk);
          if (first && parser.fieldsSeen > 0) {
            if (parser.retry === null) this.note('first frame was not retry:');
            first = false;
          }
        });
        res.on('end', () => finish(true));
        res.on('error', () => finish(true));
        res.on('close', () => finish(true));
        if (Date.now() < this.stallUntil) this.stall(this.stallUntil - Date.now());
        if (this.kind === 'reconnecting') {
          drop = setTimeout(() => req.destroy(), this.rng.int(300, 5000));
        } else if (this.kind === 'slow') {
          const cycle = () => {
            slowTimer = setTimeout(() => {
              if (settled) return;
              res.pause();
              slowTimer = setTimeout(() => {
                if (!settled && Date.now() >= this.stallUntil) res.resume();
                cycle();
              }, this.rng.int(1000, 5000));
            }, this.rng.int(1000, 6000));
          };
          cycle();
        }
      });
      this.req = req;
      req.on('error', () => {
        this.stats.errors++;
        finish(got200);
      });
      req.on('close', () => finish(got200));
      req.end();
    });
  }
}

/** A poller on /v1/changes, switching replica on every request. */
export class PollClient extends BaseClient {
  private cursor = '0';
  private req: ClientRequest | null = null;

  constructor(name: string, project: string, rng: Rng, replicas: Replicas) {
    super(name, 'poll', project, rng, replicas);
  }

  protected abort(): void {
    this.req?.destroy();
  }

  protected async loop(): Promise<void> {
    let backoff = 50;
    while (!this.stopped) {
      const base = await this.replicas.pick(() => this.stopped);
      if (!base || this.stopped) return;
      const limit = this.rng.pick([1, 7, 64, 512]);
      const wait = this.rng.pick([0, 0, 1, 2]);
      const types = this.types ? `&types=${encodeURIComponent(this.types.join(','))}` : '';
      const url = `${base}/v1/changes?project=${encodeURIComponent(this.project)}&after=${this.cursor}&limit=${limit}&wait=${wait}${types}`;
      this.connects++;
      this.history.push(`#${this.connects} ${base} after=${this.cursor} limit=${limit} wait=${wait}`);
      if (this.history.length > 100_000) this.history.splice(0, 50_000);
      let reply: HttpResult | null = null;
      try {
        reply = await httpGet(url, (wait + 15) * 1000, (req) => (this.req = req));
      } catch {
        this.stats.errors++;
      }
      if (this.stopped) return;
      if (reply) this.status(reply.status);
      if (!reply || reply.status !== 200) {
        backoff = Math.min(backoff * 2, 1000);
        await sleep(this.rng.int(backoff / 2, backoff));
        continue;
      }
      backoff = 50;
      let page: { events?: FeedEvent[]; next?: string | null; has_more?: boolean };
      try {
        page = JSON.parse(reply.body);
      } catch {
        this.note(`unparseable /v1/changes body: ${reply.body.slice(0, 120)}`);
        continue;
      }
      if (!Array.isArray(page.events)) {
        this.note(`/v1/changes without events[]: ${reply.body.slice(0, 120)}`);
        continue;
      }
      if (page.events.length > limit) this.note(`/v1/changes returned ${page.events.length} events for limit=${limit}`);
      for (const ev of page.events) this.accept(ev, null);
      if (page.next !== null && page.next !== undefined) this.cursor = String(page.next);
      if (!page.has_more && page.events.length === 0 && wait === 0) await sleep(this.rng.int(50, 300));
    }
  }
}

export type Client = SseClient | PollClient;
