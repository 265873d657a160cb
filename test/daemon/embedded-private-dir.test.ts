// `npm start` as root from a checkout in a directory the postgres user
// cannot enter (root's home is 0700, and so is every mktemp -d). Postgres
// refuses root, so it runs as the postgres user, which could reach neither
// the binaries in node_modules nor a data directory under the checkout: the
// daemon died with an unhandled spawn EACCES. Now the cluster and a copy of
// the binaries live in the state directory, and a setting that cannot work
// ends in one line.
import { cpSync, chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { waitUntil } from '../helpers/wait.js';
import { startDaemon } from '../helpers/daemon.js';
import { freePort } from '../helpers/free-port.js';
import { connectSse, getJson } from '../helpers/sse-client.js';

if (userInfo().uid !== 0) {
  t.comment('skipped: only root runs Postgres as another user; run the suite as root to exercise this');
  t.pass('not root');
  process.exit(0);
}

const root = join(import.meta.dirname, '..', '..');
// The private directory, as mktemp -d makes it, holding a checkout: this
// build, its migrations and package.json, and the installed node_modules.
const priv = mkdtempSync(join(tmpdir(), 'pgfeed-private-'));
t.equal(statSync(priv).mode & 0o777, 0o700, 'the checkout is in a 0700 directory');
const checkout = join(priv, 'pgfeed');
for (const part of ['dist', 'sql', 'package.json']) cpSync(join(root, part), join(checkout, part), { recursive: true });
// Hard links: a real tree under the private directory (a symlink would
// resolve to the reachable original), made in a moment.
execFileSync('cp', ['-al', join(root, 'node_modules'), join(checkout, 'node_modules')]);
// The state directory a root pgfeed falls back to (systemd's StateDirectory=
// sets STATE_DIRECTORY; the default is /var/lib/pgfeed, kept out of tests).
const state = mkdtempSync(join(tmpdir(), 'pgfeed-state-'));
chmodSync(state, 0o755);
const where = { cwd: checkout, cli: join(checkout, 'dist', 'cli.js') };

t.teardown(() => {
  rmSync(priv, { recursive: true, force: true });
  rmSync(state, { recursive: true, force: true });
});

t.test('npm start from the private checkout serves, on a cluster in the state directory', async (t) => {
  const pgPort = await freePort();
  const d = await startDaemon(t, null, { STATE_DIRECTORY: state, PGFEED_EMBEDDED_PORT: String(pgPort), PGFEED_DEMO: 'true' }, [], where);
  t.teardown(() => d.stop('SIGTERM'));
  // stderr is another pipe than the log's: its lines may arrive just after 'listening'.
  await waitUntil(() => d.stderr.includes('pgfeed is serving on'), 10_000, 'the start-up lines on stderr');
  t.match(d.stderr, `embedded Postgres (data in ${join(state, 'db')})`, 'the start-up lines say where the data is');
  const copied = readdirSync(state).find((f) => f.startsWith('postgres-'));
  t.ok(copied, 'the binaries were copied into the state directory');
  t.match(d.stderr, `Postgres binaries copied to ${join(state, copied!, 'bin')}`, 'and the start-up lines say so');
  t.notOk(existsSync(join(checkout, '.pgfeed', 'db', 'PG_VERSION')), 'no cluster under the checkout the postgres user cannot enter');
  t.equal(statSync(priv).mode & 0o777, 0o700, 'the private directory was left as it was');

  const c = await connectSse(`${d.base}/v1/events?project=demo&after=0`);
  t.teardown(() => c.close());
  t.equal(c.status, 200);
  await c.waitFor((c) => c.seqs.length >= 2, 20_000, 'demo events');
  t.equal((await getJson(`${d.base}/readyz`)).body.ready, true, 'ready');
  t.equal(await d.stop('SIGTERM'), 0, 'SIGTERM: exit 0');
  t.notOk(existsSync(join(state, 'db', 'postmaster.pid')), 'the embedded server stopped with the daemon');
});

t.test('a data directory the postgres user cannot reach: one line, the fix, a non-zero exit', async (t) => {
  const proc = spawn(process.execPath, [where.cli, 'serve'], {
    cwd: checkout,
    env: { PATH: process.env.PATH, PGFEED_PORT: '0', PGFEED_DATA_DIR: join(priv, 'db'), PGFEED_EMBEDDED_PORT: String(await freePort()) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (b) => (stderr += b));
  const kill = setTimeout(() => proc.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((r) => proc.once('exit', r));
  clearTimeout(kill);
  t.not(code, 0, 'a non-zero exit');
  const lines = stderr.trim().split('\n');
  t.equal(lines.length, 1, `one line on stderr: ${stderr}`);
  t.match(lines[0], /^pgfeed: the postgres user\b.* cannot enter .*; set PGFEED_DATA_DIR/, 'it names the cause and the fix');
});
