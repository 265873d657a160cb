import type { Sink } from '../feed/sink.js';
import type { HttpResponse } from './uws.js';

/**
 * The most one uWS write may carry: with its chunk framing ("\r\n", up to 8
 * hex digits, "\r\n") it fits uWS's 16 KiB cork buffer when that is empty.
 *
 * uWS.js 20.30 loses data on a larger write made while corked. Such a write
 * first flushes what the cork buffer holds (at least the write's own chunk
 * header); if the socket takes less than all of that, the flush's rest is
 * buffered and the write's own bytes are dropped, although the write reports
 * backpressure as if they were queued (AsyncSocket::uncork; fixed upstream
 * in uWS v20.77, which has no build this project can install: design.md §6).
 * The client then gets a chunk header without its data: a lost slab of
 * events and a broken chunked stream (bench/README.md, "Catch-up memory").
 * Writes that always fit the cork buffer never take that path.
 */
const MAX_WRITE = 16 * 1024 - 64;

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

  /**
   * Writes the frame in pieces of at most MAX_WRITE bytes, each in its own
   * cork, so each is one chunk that fits an empty cork buffer. Several
   * writes are never corked together: they could overflow the cork buffer,
   * which is what loses data (MAX_WRITE), and slabs of up to 64 KB gain
   * nothing from sharing a syscall. A piece after
   * one that pushed back is still written: the frame is taken whole, and uWS
   * queues it behind the rest in order.
   */
  write(frame: Buffer): boolean {
    if (!this.open) return true;
    let ok = true;
    for (let at = 0; at < frame.length; at += MAX_WRITE) {
      const piece = frame.subarray(at, at + MAX_WRITE);
      this.res.cork(() => {
        if (!this.res.write(piece)) ok = false;
      });
    }
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
