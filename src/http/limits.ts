import { PgfeedError, type ErrorCode } from '../errors.js';

/**
 * Limits counted per key: a client address today, a token's subject too.
 * Each refuses one key and leaves every other key served, and each forgets
 * a key as soon as it holds nothing, so that the maps hold only the keys
 * active right now, however many addresses have come and gone.
 */

/** A refusal by a limit: 429 with Retry-After (an EventSource is asked to retry). */
export class LimitError extends PgfeedError {
  constructor(
    code: Extract<ErrorCode, 'too_many_streams' | 'rate_limited'>,
    message: string,
    /** Seconds until the key may try again, when known; else Retry-After is spread like any other. */
    readonly retryAfterS?: number,
  ) {
    super(code, message);
  }
}

/** At most `max` places held at once per key; 0 is no limit. */
export class KeyedLimit {
  private readonly held = new Map<string, number>();

  constructor(readonly max: number) {}

  /** Takes a place for `key`, or returns null when it holds `max`. The release is idempotent. */
  acquire(key: string): (() => void) | null {
    if (this.max === 0) return () => {};
    const n = this.held.get(key) ?? 0;
    if (n >= this.max) return null;
    this.held.set(key, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.held.get(key) ?? 1) - 1;
      if (left > 0) this.held.set(key, left);
      else this.held.delete(key);
    };
  }

  count(key: string): number {
    return this.held.get(key) ?? 0;
  }

  /** Keys holding at least one place. */
  get keys(): number {
    return this.held.size;
  }
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * A token bucket per key: `perSecond` tokens a second, holding at most
 * `perSecond`, so a key may burst that many and then keeps to the rate.
 * 0 is no limit. A full bucket is the same as none, so buckets that have
 * refilled are dropped, at most once a second: the map holds only the keys
 * seen within about the last second.
 */
export class KeyedRate {
  private readonly buckets = new Map<string, Bucket>();
  private sweptAt = 0;

  constructor(
    readonly perSecond: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Spends a token of `key`: 0 when there was one, else the milliseconds until there is. */
  take(key: string): number {
    if (this.perSecond === 0) return 0;
    const now = this.now();
    this.sweep(now);
    const b = this.buckets.get(key) ?? { tokens: this.perSecond, at: now };
    b.tokens = Math.min(this.perSecond, b.tokens + ((now - b.at) * this.perSecond) / 1000);
    b.at = now;
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) * 1000) / this.perSecond);
  }

  get keys(): number {
    return this.buckets.size;
  }

  private sweep(now: number): void {
    if (now - this.sweptAt < 1000) return;
    this.sweptAt = now;
    for (const [key, b] of this.buckets) {
      if (b.tokens + ((now - b.at) * this.perSecond) / 1000 >= this.perSecond) this.buckets.delete(key);
    }
  }
}
