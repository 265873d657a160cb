import net from 'node:net';
import type { Logger } from '../log.js';

/**
 * The socket of a connection that must not hang. A peer that vanished
 * without a FIN (a pulled cable, a dead NAT entry, a frozen server) leaves
 * the socket open and every query on it unanswered forever: neither pg nor
 * pg-listen puts a deadline on a query. So the socket is closed when nothing
 * has moved on it for `timeoutMs`, counting the writes of the connection's
 * own regular query (a heartbeat, a poll): then the client errors, and its
 * owner reconnects. Over TLS the socket's idle timer still sees the traffic
 * (node:tls refreshes its parent's).
 */
export function watchedSocket(timeoutMs: number, connection: string, setting: string, log: Logger): () => net.Socket {
  return () => {
    const socket = new net.Socket();
    socket.setTimeout(timeoutMs, () => {
      log.warn({ timeoutMs }, `${connection} silent; replacing it`);
      socket.destroy(new Error(`the ${connection} was silent for ${timeoutMs} ms (${setting})`));
    });
    return socket;
  };
}
