// Configuration: validated once at start-up, one line naming the bad key,
// a non-zero exit; flags win over env vars; the result is frozen.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { loadConfig, SETTINGS } from '../src/config.js';
import { PgfeedError } from '../src/errors.js';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // A clean environment: only what the case sets, so no stray PGFEED_* leaks in.
    const p = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH!, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`pgfeed ${args.join(' ')} did not exit within 20 s\n${stderr}`));
    }, 20_000);
    p.on('error', reject);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const bad: { name: string; args?: string[]; env?: Record<string, string>; key: string }[] = [
  { name: 'PGFEED_PORT=abc', env: { PGFEED_PORT: 'abc' }, key: 'PGFEED_PORT' },
  { name: 'PGFEED_PORT=70000', env: { PGFEED_PORT: '70000' }, key: 'PGFEED_PORT' },
  { name: 'PGFEED_PORT=-1', env: { PGFEED_PORT: '-1' }, key: 'PGFEED_PORT' },
  { name: 'PGFEED_PORT empty', env: { PGFEED_PORT: '' }, key: 'PGFEED_PORT' },
  { name: 'PGFEED_HEARTBEAT_MS=5', env: { PGFEED_HEARTBEAT_MS: '5' }, key: 'PGFEED_HEARTBEAT_MS' },
  { name: 'PGFEED_LOG_LEVEL=loud', env: { PGFEED_LOG_LEVEL: 'loud' }, key: 'PGFEED_LOG_LEVEL' },
  { name: 'DATABASE_URL=mysql://x', env: { DATABASE_URL: 'mysql://x' }, key: 'DATABASE_URL' },
  { name: 'DATABASE_URL not a URL', env: { DATABASE_URL: 'not a url' }, key: 'DATABASE_URL' },
  { name: 'PGFEED_CHANNEL with a quote', env: { PGFEED_CHANNEL: 'a"b' }, key: 'PGFEED_CHANNEL' },
  { name: 'PGFEED_DEMO=maybe', env: { PGFEED_DEMO: 'maybe' }, key: 'PGFEED_DEMO' },
  { name: 'an unknown PGFEED_FOO', env: { PGFEED_FOO: '1' }, key: 'PGFEED_FOO' },
  { name: 'an unknown --flag', args: ['serve', '--flag'], key: '--flag' },
  { name: '--port=abc', args: ['serve', '--port=abc'], key: '--port' },
  { name: '--port without a value', args: ['serve', '--port'], key: '--port' },
  { name: 'pgfeed frobnicate', args: ['frobnicate'], key: 'frobnicate' },
  { name: 'pgfeed migrate --log-level loud', args: ['migrate', '--log-level', 'loud'], key: '--log-level' },
];

for (const c of bad) {
  t.test(`refused at start-up: ${c.name}`, async (t) => {
    const r = await cli(c.args ?? ['serve'], c.env);
    t.not(r.code, 0, 'a non-zero exit');
    t.not(r.code, null, 'an exit, not a signal');
    const lines = r.stderr.split('\n').filter(Boolean);
    t.equal(lines.length, 1, `a single line on stderr: ${JSON.stringify(r.stderr)}`);
    t.match(lines[0], /^pgfeed: /, 'it starts with "pgfeed: "');
    t.ok(lines[0].includes(c.key), `it names ${c.key}: ${lines[0]}`);
    t.equal(r.stdout, '', 'nothing on stdout');
  });
}

t.test('--help exits 0 and lists every env var and flag', async (t) => {
  for (const args of [['--help'], ['help'], ['-h'], ['serve', '--help']]) {
    const r = await cli(args);
    t.equal(r.code, 0, `${args.join(' ')}: exit 0`);
    t.match(r.stdout, /^usage: pgfeed/);
    for (const s of Object.values(SETTINGS)) {
      t.ok(r.stdout.includes(s.env), `${args.join(' ')} lists ${s.env}`);
      t.ok(r.stdout.includes(s.flag), `${args.join(' ')} lists ${s.flag}`);
    }
  }
});

t.test('--version prints the package version', async (t) => {
  const r = await cli(['--version']);
  t.equal(r.code, 0);
  t.match(r.stdout, /^\d+\.\d+\.\d+/);
});

t.test('loadConfig: defaults', async (t) => {
  const c = loadConfig([], {});
  t.equal(c.databaseUrl, '');
  t.equal(c.host, '127.0.0.1');
  t.equal(c.port, 8787);
  t.equal(c.channel, 'pgfeed');
  t.equal(c.heartbeatMs, 15_000);
  t.equal(c.logLevel, 'info');
  t.equal(c.demo, false);
  for (const [key, s] of Object.entries(SETTINGS)) t.same(c[key as keyof typeof c], s.default, `${key} defaults to ${JSON.stringify(s.default)}`);
});

t.test('loadConfig: env vars are read and parsed', async (t) => {
  const c = loadConfig([], { DATABASE_URL: 'postgres://u@h/db', PGFEED_PORT: '9000', PGFEED_DEMO: '1', PGFEED_LOG_LEVEL: 'warn', HOME: '/root' });
  t.equal(c.databaseUrl, 'postgres://u@h/db');
  t.equal(c.port, 9000);
  t.equal(c.demo, true);
  t.equal(c.logLevel, 'warn');
});

t.test('loadConfig: a flag wins over its env var', async (t) => {
  const env = { PGFEED_PORT: '9000', PGFEED_HOST: '0.0.0.0', PGFEED_DEMO: 'true', DATABASE_URL: 'postgres://env/db' };
  const c = loadConfig(['--port', '9100', '--host=::1', '--demo=false', '--database-url', 'postgresql://flag/db'], env);
  t.equal(c.port, 9100, '--port wins over PGFEED_PORT');
  t.equal(c.host, '::1', '--host=... wins over PGFEED_HOST');
  t.equal(c.demo, false, '--demo=false wins over PGFEED_DEMO');
  t.equal(c.databaseUrl, 'postgresql://flag/db');
  t.equal(loadConfig(['--demo'], {}).demo, true, 'a bare --demo means true');
  t.equal(loadConfig(['--demo', '--port', '1'], {}).port, 1, 'a bare --demo does not take the next argument');
  // Only the value in use is parsed: a bad env var under a flag does not matter.
  t.equal(loadConfig(['--port', '1'], { PGFEED_PORT: 'abc' }).port, 1, 'an overridden env value is not parsed');
});

t.test('loadConfig: the result is frozen', async (t) => {
  const c = loadConfig([], {});
  t.ok(Object.isFrozen(c));
  t.throws(() => {
    (c as { port: number }).port = 1;
  }, TypeError);
});

t.test('loadConfig: errors are invalid_config and name the key', async (t) => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [[], { PGFEED_PORT: '70000' }, /^PGFEED_PORT /],
    [['--port', '70000'], {}, /^--port /],
    [[], { PGFEED_BOGUS: 'x' }, /PGFEED_BOGUS/],
    [['--bogus'], {}, /--bogus/],
    [['--heartbeat-ms'], {}, /--heartbeat-ms needs a value/],
    [[], { PGFEED_RING_EVENTS: '1e6' }, /^PGFEED_RING_EVENTS /],
  ];
  for (const [argv, env, re] of cases) {
    try {
      loadConfig(argv, env);
      t.fail(`${JSON.stringify([argv, env])} should be refused`);
    } catch (err) {
      t.ok(err instanceof PgfeedError, 'a PgfeedError');
      t.equal((err as PgfeedError).code, 'invalid_config');
      t.match((err as Error).message, re);
    }
  }
  // Env vars of the test and bench tools are not pgfeed settings and are ignored.
  t.doesNotThrow(() => loadConfig([], { PGFEED_TEST_DATABASE_URL: 'x', PGFEED_BENCH_STREAMS: '1', OTHER: 'y' }));
});
