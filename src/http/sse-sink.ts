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
    return this.open ? this.res.write(frame) : true;
  }

  cork(fn: () => void): void {
    if (this.open) this.res.cork(fn);
  }

  onDrain(fn: () => void): void {
    this.drain = fn;
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
