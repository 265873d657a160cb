// A TCP proxy in front of daemons, like a load balancer: an EventSource
// reconnects to one URL, and the proxy decides which daemon that reaches.
// Each client connection is piped to the target current when it opened.
import net from 'node:net';

export interface SwitchProxy {
  readonly port: number;
  readonly base: string;
  /** Where new connections go; open ones stay where they are. */
  target: number;
  /** Cuts every open connection, both sides, as a network failure would. */
  dropAll(): void;
  close(): Promise<void>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

export async function startSwitchProxy(t: Teardown, target: number): Promise<SwitchProxy> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  const server = net.createServer((client) => {
    const upstream = net.connect(proxy.target, '127.0.0.1');
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const proxy: SwitchProxy = {
    port,
    base: `http://127.0.0.1:${port}`,
    target,
    dropAll() {
      for (const [client, upstream] of [...pairs]) {
        client.destroy();
        upstream.destroy();
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
