import type { Sink } from '../feed/sink.js';
import type { HttpResponse } from './uws.js';

/**
 * A uWS response as a Sink. uWS rules kept here: never touch `res` after
 * abort; cork writes made outside the request handler; on backpressure wait
 * for onWritable (registered once, at the start).
 *
 * `onClosed` runs once when the sink stops being open, whoever closes it:
 * the client (abort), pgfeed (end: shutdown, a slow client), or an error
 * answer taking the response over (detach). uWS fires onAborted only for a
 * response that was not ended, so that alone would miss pgfeed's own closes.
 */
export class SseSink implements Sink {
  open = true;
  private drain?: () => void;
  private unsent = 0;

  /** Construct inside the request handler: it registers onAborted. */
  constructor(
    private readonly res: HttpResponse,
    private readonly onClosed: () => void = () => {},
  ) {
    res.onAborted(() => this.closed());
    res.onWritable(() => {
      const fn = this.drain;
      this.drain = undefined;
      fn?.();
      // While an onWritable handler is registered, uWS leaves its own write
      // buffer alone when the socket drains: only a write or an uncork sends
      // it. A stream that has nothing new to write (caught up, or its last
      // write buffered without pushing back) would otherwise hold those bytes
      // until its next event or heartbeat. An empty cork sends them.
      if (this.open) res.cork(() => {});
      // The frames were already taken by write(); nothing to retry here.
      return true;
    });
  }

  /** The response is answered by someone else (an error responder): the sink no longer touches it. */
  detach(): void {
    this.closed();
  }

  write(frame: Buffer): boolean {
    if (!this.open) return true;
    const ok = this.res.write(frame);
    // uWS tells whether a write left bytes behind, not how many (a response
    // has no getBufferedAmount): all of a write that pushed back, and every
    // write after it, count until one goes through, which finds uWS's buffer
    // sent.
    this.unsent = ok ? 0 : this.unsent + frame.length;
    return ok;
  }

  get buffered(): number {
    return this.open ? this.unsent : 0;
  }

  cork(fn: () => void): void {
    if (this.open) this.res.cork(fn);
  }

  onDrain(fn: () => void): void {
    this.drain = fn;
  }

  /**
   * uWS ends a response 10 s after a write to it pushed back (HTTP_TIMEOUT_S,
   * checked on 4 s ticks) unless a write that pushes back again re-arms the
   * timer; a write the kernel takes (a ping squeezed into the little room a
   * full socket has) leaves it running. resume() re-arms it, and pause() just
   * before leaves the socket's polling as it was.
   */
  keepWaiting(): void {
    if (!this.open) return;
    this.res.pause();
    this.res.resume();
  }

  end(): void {
    if (!this.open) return;
    this.res.cork(() => this.res.end());
    this.closed();
  }

  private closed(): void {
    if (!this.open) return;
    this.open = false;
    this.drain = undefined;
    this.onClosed();
  }
}
