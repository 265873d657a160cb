import { createServer } from 'node:net';

/** A loopback port that was free a moment ago, for a server started next. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * A free loopback port below Linux's ephemeral range (32768 and up), for a
 * server that restarts: while it is down, the kernel may hand a port from
 * that range to an outgoing connection, and the server could not bind again.
 */
export async function freeLowPort(lo = 20_000, hi = 32_000): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = lo + Math.floor(Math.random() * (hi - lo));
    if (await canListen(port)) return port;
  }
  throw new Error(`no free loopback port in ${lo}-${hi}`);
}
