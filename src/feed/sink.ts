/**
 * Where a subscriber's frames go. The feed knows nothing of HTTP: the uWS
 * response is adapted to this in src/http/sse-sink.ts, and tests can adapt
 * anything else.
 */
export interface Sink {
  /** Writes a frame. false means backpressure: the frame was taken, but stop writing. */
  write(frame: Buffer): boolean;
  /** Calls fn once, when the socket has drained after a false write. */
  onDrain(fn: () => void): void;
  /** Ends the stream cleanly. */
  end(): void;
  /**
   * Called every few seconds while the subscriber waits for a drain: keeps
   * the transport from ending a stream whose client reads slowly, so that
   * only the slow-client timeout decides when it is given up.
   */
  keepWaiting(): void;
  readonly open: boolean;
  /**
   * Bytes the sink took but could not send yet, as far as it can tell: an
   * upper bound of what it buffers in memory for a slow socket.
   */
  readonly buffered: number;
}
