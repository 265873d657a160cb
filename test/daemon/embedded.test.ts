// With no DATABASE_URL, `pgfeed serve` runs on an embedded Postgres kept in
// a data directory: it initialises, migrates, says how to connect, streams,
// and keeps its events across a restart. This runs as whatever user the
// suite runs as, root included.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import t from 'tap';
import { startDaemon, type DaemonProcess } from '../helpers/daemon.js';
import { connectSse, getJson, type SseClient } from '../helpers/sse-client.js';
import { freePort } from '../helpers/free-port.js';
import { waitUntil } from '../helpers/wait.js';

const tmp = mkdtempSync(join(tmpdir(), 'pgfeed-embedded-'));
// mkdtemp makes it 0700; as root, the postgres user must be able to enter it.
chmodSync(tmp, 0o755);
const dataDir = join(tmp, 'db');
const pgPort = await freePort();
const env = { PGFEED_DATA_DIR: dataDir, PGFEED_EMBEDDED_PORT: String(pgPort), PGFEED_DEMO: 'true' };
const daemons: DaemonProcess[] = [];
const clients: SseClient[] = [];

t.teardown(async () => {
  clients.forEach((c) => c.close());
  // A graceful stop also stops the embedded server.
  for (const d of daemons) await d.stop('SIGTERM');
  // If a daemon died without stopping it, stop the server the data dir names.
  const pidFile = join(dataDir, 'postmaster.pid');
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    try {
      process.kill(pid, 'SIGINT');
      await waitUntil(() => !existsSync(pidFile), 15_000, 'the embedded server to stop');
    } catch {
      // already gone
    }
  }
  rmSync(tmp, { recursive: true, force: true });
});

let firstSeqs: number[] = [];

t.test('first start: initialises, migrates, prints how to connect, streams the demo', async (t) => {
  const d = await startDaemon(t, null, env);
  daemons.push(d);
  await waitUntil(() => d.stderr.includes('curl -N'), 10_000, 'the start-up hints');
  t.ok(d.logs.some((l) => l.msg === 'initialising embedded Postgres'), 'a fresh data dir is initialised');
  const psql = /psql (postgres:\/\/\S+)/.exec(d.stderr);
  t.ok(psql, `a psql URL is printed: ${d.stderr}`);
  t.match(psql![1], new RegExp(`@127\\.0\\.0\\.1:${pgPort}/`), 'on the embedded port');
  const curl = /curl -N '([^']+)'/.exec(d.stderr);
  t.ok(curl, 'a curl -N command is printed');
  t.equal(curl![1], `${d.base}/v1/events?project=demo&after=0`, 'it points at this daemon and the demo project');

  // The printed URL works and the database is migrated.
  const client = new pg.Client({ connectionString: psql![1] });
  await client.connect();
  const { rows } = await client.query(`SELECT to_regclass('pgfeed.change_log') IS NOT NULL AS migrated, current_user AS who`);
  await client.end();
  t.same(rows[0], { migrated: true, who: 'postgres' }, 'migrated, and reachable as printed');

  const c = await connectSse(curl![1]);
  clients.push(c);
  t.equal(c.status, 200);
  await c.waitFor((c) => c.seqs.length >= 3, 20_000, 'demo events');
  t.ok(c.events.filter((e) => e.id).every((e) => e.json.project === 'demo'), 'demo events of project demo');
  t.ok(c.events.some((e) => e.event === 'pgfeed_demo_orders.insert'), 'inserts into the demo table');
  t.equal((await getJson(`${d.base}/readyz`)).body.ready, true, 'ready');

  t.equal(await d.stop('SIGTERM'), 0, 'SIGTERM: exit 0');
  await c.waitFor((c) => c.closed, 5_000, 'the stream to end');
  t.ok(c.ended, 'the stream ended cleanly');
  firstSeqs = [...c.seqs];
  t.notOk(existsSync(join(dataDir, 'postmaster.pid')), 'the embedded server was stopped with the daemon');
});

t.test('second start on the same data dir: the earlier events are still there', async (t) => {
  const d = await startDaemon(t, null, env);
  daemons.push(d);
  t.notOk(d.logs.some((l) => l.msg === 'initialising embedded Postgres'), 'the data dir is reused, not initialised again');
  const c = await connectSse(`${d.base}/v1/events?project=demo&after=0`);
  clients.push(c);
  await c.waitFor((c) => c.seqs.length > firstSeqs.length, 20_000, 'the replay and a new demo event');
  t.same(c.seqs.slice(0, firstSeqs.length), firstSeqs, 'after=0 replays what the first run streamed, in the same order');
  t.equal(new Set(c.seqs).size, c.seqs.length, 'nothing twice');
  t.equal(await d.stop('SIGTERM'), 0, 'SIGTERM: exit 0');
});
