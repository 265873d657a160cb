// Under systemd (Type=notify), serve says READY=1 only once it serves (the
// port bound, LISTEN up), keeps the watchdog fed, and says STOPPING=1 when
// it begins to shut down. Read from a fake NOTIFY_SOCKET the test owns.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { startDaemon } from '../helpers/daemon.js';
import { assignments, notifySkip, startNotifySocket } from '../helpers/notify-socket.js';
import { terminateLockWaiters } from '../helpers/terminate.js';

const says = (name: string, value?: string) => (m: string) => {
  const v = assignments(m).get(name);
  return v !== undefined && (value === undefined || v === value);
};

t.test('READY=1 once serving, WATCHDOG=1 keepalives, STOPPING=1 on SIGTERM', { skip: notifySkip }, async (t) => {
  const db = await testDatabase(t);
  const socket = await startNotifySocket(t);
  // Hold the settings row, so that start-up blocks in Daemon.start() (the
  // settings check, before the tail, LISTEN and the port) with a known backend.
  const locker = await db.pool.connect();
  t.teardown(() => locker.release());
  await locker.query('BEGIN');
  await locker.query('LOCK TABLE pgfeed.settings IN ACCESS EXCLUSIVE MODE');
  // WATCHDOG_USEC as systemd sets it for WatchdogSec=0.4s: a keepalive every 200 ms.
  const starting = startDaemon(t, db.url, { NOTIFY_SOCKET: socket.address, WATCHDOG_USEC: '400000' });
  starting.catch(() => {});

  // The blocked start is ended as a restart would end it; its retry is
  // reported in a STATUS= line: the witness that everything sent before it,
  // while the daemon was not serving, has arrived.
  t.ok((await terminateLockWaiters(db.pool, 'pgfeed:query')) > 0, 'start-up was waiting on the lock');
  const retried = await socket.waitFor((m) => /^STATUS=database not reachable yet/.test(m), 'the retry status');
  t.same(socket.messages.slice(0, retried).filter(says('READY')), [], 'no READY=1 before the daemon serves');
  t.ok(socket.messages.slice(0, retried).some(says('STATUS', 'applying migrations')), 'STATUS= tells the start-up steps');

  await locker.query('ROLLBACK');
  const ready = await socket.waitFor(says('READY', '1'), 'READY=1', retried);
  const daemon = await starting;
  t.equal(assignments(socket.messages[ready]).get('STATUS'), `serving on ${daemon.base}`, 'READY=1 comes with the address served');
  t.ok(daemon.logs.some((l) => l.msg === 'listening'), 'the daemon logged that it listens');
  const readyz = await fetch(`${daemon.base}/readyz`);
  t.equal(readyz.status, 200, '/readyz: the feed is ready, LISTEN is up');

  const pings = async (n: number, from: number) => {
    for (let i = 0, at = from; i < n; i++) at = (await socket.waitFor((m) => m === 'WATCHDOG=1', `keepalive ${i + 1}`, at, 10_000)) + 1;
  };
  await t.resolves(pings(3, ready + 1), 'WATCHDOG=1 arrives again and again after READY=1');

  t.equal(await daemon.stop('SIGTERM'), 0, 'SIGTERM: a clean exit');
  const stopping = await socket.waitFor(says('STOPPING', '1'), 'STOPPING=1', ready);
  t.ok(stopping > ready, 'STOPPING=1 after READY=1');
  t.match(assignments(socket.messages[stopping]).get('STATUS'), /^shutting down \(SIGTERM\)/);
});
