// A Sink for feed tests that run without a socket: it records every frame,
// pushes back on the writes `pushBack` picks, and drains when released.
import type { Sink } from '../../src/feed/sink.js';

export class RecordingSink implements Sink {
  open = true;
  /** Nothing is held: every frame is recorded at once. */
  readonly buffered = 0;
  writes = 0;
  readonly frames: Buffer[] = [];
  private drain?: () => void;

  /** `pushBack(n)`: whether the n-th write (1-based) reports backpressure. */
  constructor(private readonly pushBack: (n: number) => boolean) {}

  write(frame: Buffer): boolean {
    this.frames.push(frame);
    return !this.pushBack(++this.writes);
  }
  onDrain(fn: () => void): void {
    this.drain = fn;
  }
  /** The socket drained: resume the subscriber. Returns whether one was waiting. */
  release(): boolean {
    const fn = this.drain;
    this.drain = undefined;
    fn?.();
    return fn !== undefined;
  }
  end(): void {
    this.open = false;
  }
  /** No transport to time the stream out. */
  keepWaiting(): void {}
  /** The ids of every event written so far, in order. */
  get seqs(): number[] {
    return [...Buffer.concat(this.frames).toString().matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
  }
}
