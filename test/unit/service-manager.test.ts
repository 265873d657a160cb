// The sd_notify messages themselves, against a fake NOTIFY_SOCKET: in the
// abstract namespace ("@name"), one line per status, the variables kept
// from children, another process's watchdog left alone.
import t from 'tap';
import { createLogger } from '../../src/log.js';
import { connectServiceManager } from '../../src/service-manager.js';
import { notifySkip, startNotifySocket } from '../helpers/notify-socket.js';
import { sleep } from '../helpers/wait.js';

const log = createLogger('silent');
const sent = (messages: readonly string[]) => messages.filter((m) => m !== 'BARRIER=1');

t.test('an abstract NOTIFY_SOCKET gets each message, in order, one line per status', { skip: notifySkip }, async (t) => {
  const socket = await startNotifySocket(t, { abstract: true });
  t.match(socket.address, /^@/);
  const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: socket.address, PATH: process.env.PATH };
  const manager = connectServiceManager(log, env);
  manager.status('two\nlines');
  manager.ready('serving');
  manager.stopping('bye');
  await manager.close();
  await socket.waitFor((m) => m.startsWith('STOPPING=1'), 'STOPPING=1');
  t.same(sent(socket.messages), ['STATUS=two lines', 'READY=1\nSTATUS=serving', 'STOPPING=1\nSTATUS=bye']);
});

t.test('keepalives go only to a watchdog set for this process (WATCHDOG_PID)', { skip: notifySkip }, async (t) => {
  for (const [pid, expected] of [[process.pid, 'some'], [1, 'none']] as const) {
    const socket = await startNotifySocket(t);
    // A keepalive every 50 ms once ready.
    const manager = connectServiceManager(log, { NOTIFY_SOCKET: socket.address, WATCHDOG_USEC: '100000', WATCHDOG_PID: String(pid), PATH: process.env.PATH });
    manager.ready('serving');
    await sleep(400);
    // The marker: every keepalive sent before it has arrived before it.
    manager.status('marker');
    const marker = await socket.waitFor((m) => m === 'STATUS=marker', 'the marker');
    await manager.close();
    const pings = sent(socket.messages.slice(0, marker)).filter((m) => m === 'WATCHDOG=1').length;
    if (expected === 'some') t.ok(pings >= 2, `WATCHDOG_PID=${pid} (this process): ${pings} keepalives`);
    else t.equal(pings, 0, `WATCHDOG_PID=${pid} (another process): no keepalive`);
  }
});

t.test('NOTIFY_SOCKET and WATCHDOG_* are taken out of the environment children inherit', async (t) => {
  for (const env of [{ NOTIFY_SOCKET: '@x', WATCHDOG_USEC: '1000', WATCHDOG_PID: '1', PATH: '/bin' }, { WATCHDOG_USEC: '1000', PATH: '/bin' }]) {
    const manager = connectServiceManager(log, env);
    await manager.close();
    t.same(env, { PATH: '/bin' });
  }
});
