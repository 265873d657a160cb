// A TCP proxy in front of daemons, like a load balancer: an EventSource
// reconnects to one URL, and the proxy decides which daemon that reaches.
// Each client connection is piped to the upstream chosen when it opened.
import net from 'node:net';

/**
 * Where new connections go:
 * - a port: always there (`proxy.target`, which a test may change);
 * - a list of ports: round robin, each new connection to the next one
 *   (`proxy.rotation`, which a test may edit to take a replica out or put it back);
 * - a function: asked at every connection; null refuses it (the client sees a reset).
 */
export type ProxyRoute = number | readonly number[] | (() => number | null);

export interface SwitchProxy {
  readonly port: number;
  readonly base: string;
  /** Where new connections go when routing to one port; open ones stay where they are. */
  target: number;
  /** The round robin, when routing to a list of ports. */
  rotation: number[];
  /** The upstream port of every connection so far, in the order they opened (null: refused). */
  readonly connections: readonly (number | null)[];
  /** The upstream port of every connection open now. */
  readonly openTo: number[];
  /** Cuts every open connection, both sides, as a network failure would. */
  dropAll(): void;
  /** Cuts the open connections to one upstream. */
  dropTo(port: number): void;
  /**
   * Arms a cut in the middle of the byte stream: each connection open now
   * passes `bytes` more bytes to its client (the last chunk split wherever
   * the count ends, inside a frame as likely as not), then is closed.
   * `onCut` runs right before each close, with the upstream port.
   */
  cutAfter(bytes: number, onCut?: (port: number) => void): void;
  close(): Promise<void>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

interface Pair {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  readonly port: number;
  /** Bytes left before an armed cut; null when none is armed. */
  cutIn: number | null;
  onCut?: (port: number) => void;
}

export async function startSwitchProxy(t: Teardown, route: ProxyRoute): Promise<SwitchProxy> {
  const pairs = new Set<Pair>();
  const connections: (number | null)[] = [];
  let last: number | null = null;
  const pick = (): number | null => {
    if (typeof route === 'function') return route();
    if (typeof route === 'number') return proxy.target;
    const r = proxy.rotation;
    if (r.length === 0) return null;
    // The one after the last used, so that a replica taken out never makes the next two connections land together.
    const i = last === null ? -1 : r.indexOf(last);
    last = r[(i + 1) % r.length];
    return last;
  };
  const server = net.createServer((client) => {
    const port = pick();
    connections.push(port);
    if (port === null) {
      client.destroy();
      return;
    }
    const upstream = net.connect(port, '127.0.0.1');
    const pair: Pair = { client, upstream, port, cutIn: null };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    // By hand rather than piped, so that an armed cut can split a chunk.
    upstream.on('data', (chunk: Buffer) => {
      if (pair.cutIn !== null && chunk.length >= pair.cutIn) {
        const head = chunk.subarray(0, pair.cutIn);
        pair.cutIn = null;
        pair.onCut?.(port);
        upstream.destroy();
        // end(), not destroy(): the bytes before the cut reach the client, then the FIN.
        client.end(head);
        return;
      }
      if (pair.cutIn !== null) pair.cutIn -= chunk.length;
      if (!client.write(chunk)) upstream.pause();
    });
    client.on('drain', () => upstream.resume());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const cut = (which: (p: Pair) => boolean) => {
    for (const p of [...pairs]) {
      if (!which(p)) continue;
      p.client.destroy();
      p.upstream.destroy();
    }
  };
  const proxy: SwitchProxy = {
    port,
    base: `http://127.0.0.1:${port}`,
    target: typeof route === 'number' ? route : 0,
    rotation: Array.isArray(route) ? [...route] : [],
    connections,
    get openTo() {
      return [...pairs].map((p) => p.port);
    },
    dropAll: () => cut(() => true),
    dropTo: (upstream) => cut((p) => p.port === upstream),
    cutAfter(bytes, onCut) {
      for (const p of pairs) {
        p.cutIn = Math.max(1, bytes);
        p.onCut = onCut;
      }
    },
    close() {
      proxy.dropAll();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  t.teardown(() => proxy.close());
  return proxy;
}
