import type { Access } from '../auth/auth.js';
import type { Subscription } from '../feed/feed.js';
import { PING_FRAME } from '../feed/frame.js';
import type { Sink } from '../feed/sink.js';

/**
 * How often a paused stream's sink is kept waiting (Sink.keepWaiting): well
 * inside uWS's 10 s write timeout and its 4 s tick, so that a client that
 * reads slowly, or not at all for a while, stays connected until
 * PGFEED_SLOW_CLIENT_TIMEOUT_MS decides.
 */
export const KEEP_WAITING_MS = 3_000;

export interface OpenStream {
  readonly sink: Sink;
  readonly sub: Subscription;
  /** Who the stream was admitted for, when authentication is on (its subject and token expiry). */
  readonly access?: Access;
  /** What it follows, for the operator view. */
  readonly project: string;
  readonly types: readonly string[];
  /** When it opened (ms since the epoch). */
  readonly openedAt: number;
}

/** A waiting long-poll. */
export interface OpenPoll {
  /** Answers it now with what it has (nothing). */
  finish(): void;
  readonly access?: Access;
}

/**
 * The open SSE streams and long-polls: capacity, heartbeat, and ending them
 * all at shutdown. One timer for every stream, not one per stream. A stream
 * leaves `sse` when its sink closes (src/http/events-route.ts).
 */
export class Streams {
  readonly sse = new Set<OpenStream>();
  readonly polls = new Set<OpenPoll>();
  private readonly timer: NodeJS.Timeout;
  private readonly pausedTimer: NodeJS.Timeout;

  constructor(
    private readonly max: number,
    heartbeatMs: number,
  ) {
    this.timer = setInterval(() => this.heartbeat(), heartbeatMs);
    this.pausedTimer = setInterval(() => this.keepPausedWaiting(), KEEP_WAITING_MS);
  }

  /** Requests admitted but not yet streaming (their cursor is being looked up). */
  private pending = 0;

  get size(): number {
    return this.sse.size + this.polls.size + this.pending;
  }

  /** Takes a place, or returns null when full. Release it once the stream is registered or refused. */
  admit(): (() => void) | null {
    if (this.size >= this.max) return null;
    this.pending++;
    let released = false;
    return () => {
      if (!released) this.pending--;
      released = true;
    };
  }

  /** Bytes of frames the streams hold while catching up: all together, and the most one holds. */
  catchupHeld(): { total: number; most: number } {
    let total = 0;
    let most = 0;
    for (const s of this.sse) {
      const n = s.sub.heldBytes;
      total += n;
      if (n > most) most = n;
    }
    return { total, most };
  }

  private heartbeat(): void {
    for (const s of this.sse) {
      // A paused stream has frames queued already; its next write is proof of life.
      if (s.sub.state === 'paused') continue;
      s.sink.write(PING_FRAME);
    }
  }

  private keepPausedWaiting(): void {
    for (const s of this.sse) if (s.sub.state === 'paused') s.sink.keepWaiting();
  }

  /** Sends a control frame to every open stream, after what each has queued (Subscription.signal). */
  signal(frame: Buffer): void {
    for (const s of this.sse) s.sub.signal(frame);
  }

  /** Ends every stream cleanly: clients reconnect with Last-Event-ID and lose nothing. */
  endAll(): void {
    clearInterval(this.timer);
    clearInterval(this.pausedTimer);
    // Ending a sink removes its stream from `sse`: iterate over a copy.
    for (const s of [...this.sse]) s.sink.end();
    for (const p of [...this.polls]) p.finish();
  }
}
