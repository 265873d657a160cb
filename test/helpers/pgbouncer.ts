// A real PgBouncer (Debian's `pgbouncer` package) in front of a test
// database, in the pool mode a test asks for. The binary is looked up on
// PATH; tests skip, saying so, where it is not installed.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serverUser } from '../../src/db/server-user.js';
import { freePort } from './free-port.js';
import { satisfied, waitUntil } from './wait.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Why PgBouncer tests cannot run here, or null when they can. */
export function pgbouncerMissing(): string | null {
  const r = spawnSync('pgbouncer', ['--version'], { stdio: 'ignore' });
  return r.error || r.status !== 0 ? 'pgbouncer is not installed (apt-get install pgbouncer)' : null;
}

/** Starts PgBouncer in front of the database of `url` (its user and password are the server login) and returns the URL to reach it by. */
export async function startPgBouncer(t: Teardown, url: string, poolMode: 'session' | 'transaction'): Promise<string> {
  const target = new URL(url);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'pgfeed-pgbouncer-'));
  // As root PgBouncer refuses to start; it switches to the postgres user (-u), which must read its configuration.
  chmodSync(dir, 0o755);
  const ini = join(dir, 'pgbouncer.ini');
  const db = target.pathname.slice(1);
  writeFileSync(
    ini,
    `[databases]
${db} = host=${target.hostname} port=${target.port} dbname=${db} user=${decodeURIComponent(target.username)}${target.password ? ` password=${decodeURIComponent(target.password)}` : ''}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = any
pool_mode = ${poolMode}
default_pool_size = 4
`,
  );
  chmodSync(ini, 0o644);
  const user = serverUser();
  const p = spawn('pgbouncer', [...(user ? ['-u', user.name] : []), ini], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  p.stderr.on('data', (d) => (log += d));
  const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
  t.teardown(async () => {
    p.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  });
  const listening = () => /listening on 127\.0\.0\.1:\d+/.test(log);
  const up = await satisfied(waitUntil(() => listening() || p.exitCode !== null, 10_000, 'pgbouncer to listen'));
  if (!up || !listening()) throw new Error(`pgbouncer did not start: ${log}`);
  return `postgres://${target.username}@127.0.0.1:${port}/${db}`;
}
