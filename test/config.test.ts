// Configuration: validated once at start-up, one line naming the bad key,
// a non-zero exit; flags win over env vars; the result is frozen.
import t from 'tap';
import { loadCommandLine, loadConfig, SETTINGS } from '../src/config.js';
import { PgfeedError } from '../src/errors.js';
import { MIGRATE_SETTINGS } from '../src/main.js';
import { runCli as cli } from './helpers/cli.js';

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
  { name: 'pgfeed migrate --notify maybe', args: ['migrate', '--notify', 'maybe'], key: '--notify' },
  { name: 'pgfeed migrate --port 1 (a flag of serve only)', args: ['migrate', '--port', '1'], key: '--port' },
  { name: 'a stray argument', args: ['serve', 'extra'], key: 'extra' },
  { name: 'a short option', args: ['serve', '-p', '1'], key: '-p' },
  { name: '--port followed by another flag', args: ['serve', '--port', '--host', 'x'], key: '--port' },
  { name: 'a test tool variable, PGFEED_TEST_DATABASE_URL', env: { PGFEED_TEST_DATABASE_URL: 'postgres://x/y' }, key: 'PGFEED_TEST_DATABASE_URL' },
  { name: 'a bench tool variable, PGFEED_BENCH_DAEMON', env: { PGFEED_BENCH_DAEMON: 'x' }, key: 'PGFEED_BENCH_DAEMON' },
  { name: 'PGFEED_NOTIFY_QUEUE_WARN=50 (a percentage, not a fraction)', env: { PGFEED_NOTIFY_QUEUE_WARN: '50' }, key: 'PGFEED_NOTIFY_QUEUE_WARN' },
  { name: 'PGFEED_NOTIFY_QUEUE_WARN=0', env: { PGFEED_NOTIFY_QUEUE_WARN: '0' }, key: 'PGFEED_NOTIFY_QUEUE_WARN' },
  { name: 'a LISTEN timeout no longer than its heartbeat', env: { PGFEED_LISTEN_HEARTBEAT_MS: '5000', PGFEED_LISTEN_TIMEOUT_MS: '5000' }, key: 'PGFEED_LISTEN_TIMEOUT_MS' },
  { name: 'the default LISTEN timeout under a long heartbeat', args: ['serve', '--listen-heartbeat-ms', '20000'], key: 'PGFEED_LISTEN_HEARTBEAT_MS' },
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

t.test('--help exits 0 and lists every env var and flag of serve', async (t) => {
  for (const args of [['--help'], ['help'], ['-h'], ['serve', '--help'], ['help', 'serve']]) {
    const r = await cli(args);
    t.equal(r.code, 0, `${args.join(' ')}: exit 0`);
    t.match(r.stdout, /^usage: pgfeed/);
    for (const s of Object.values(SETTINGS)) {
      t.ok(r.stdout.includes(s.env), `${args.join(' ')} lists ${s.env}`);
      t.ok(r.stdout.includes(s.flag), `${args.join(' ')} lists ${s.flag}`);
    }
  }
});

t.test('migrate --help lists its own options, and only those', async (t) => {
  for (const args of [['migrate', '--help'], ['help', 'migrate']]) {
    const r = await cli(args);
    t.equal(r.code, 0, `${args.join(' ')}: exit 0`);
    t.match(r.stdout, /^usage: pgfeed migrate/);
    for (const [key, s] of Object.entries(SETTINGS)) {
      const listed = r.stdout.includes(s.flag + ' ');
      t.equal(listed, (MIGRATE_SETTINGS as readonly string[]).includes(key), `${s.flag} ${listed ? 'is' : 'is not'} listed`);
    }
  }
});

t.test('--version prints the package version', async (t) => {
  const r = await cli(['--version']);
  t.equal(r.code, 0);
  t.match(r.stdout, /^\d+\.\d+\.\d+/);
});

t.test('loadConfig: defaults', async (t) => {
  const c = loadConfig([], {}).config;
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
  const c = loadConfig([], { DATABASE_URL: 'postgres://u@h/db', PGFEED_PORT: '9000', PGFEED_DEMO: '1', PGFEED_LOG_LEVEL: 'warn', HOME: '/root' }).config;
  t.equal(c.databaseUrl, 'postgres://u@h/db');
  t.equal(c.port, 9000);
  t.equal(c.demo, true);
  t.equal(c.logLevel, 'warn');
  for (const [raw, value] of [['0.25', 0.25], ['.9', 0.9], ['1', 1], ['0.000001', 0.000001]] as const) {
    t.equal(loadConfig([], { PGFEED_NOTIFY_QUEUE_WARN: raw }).config.notifyQueueWarn, value, `PGFEED_NOTIFY_QUEUE_WARN=${raw}`);
  }
  t.equal(loadConfig([], { PGFEED_LISTEN_HEARTBEAT_MS: '300', PGFEED_LISTEN_TIMEOUT_MS: '1000' }).config.listenTimeoutMs, 1000, 'a timeout above the heartbeat');
});

t.test('loadConfig: a flag wins over its env var', async (t) => {
  const env = { PGFEED_PORT: '9000', PGFEED_HOST: '0.0.0.0', PGFEED_DEMO: 'true', DATABASE_URL: 'postgres://env/db' };
  const c = loadConfig(['--port', '9100', '--host=::1', '--demo=false', '--database-url', 'postgresql://flag/db'], env).config;
  t.equal(c.port, 9100, '--port wins over PGFEED_PORT');
  t.equal(c.host, '::1', '--host=... wins over PGFEED_HOST');
  t.equal(c.demo, false, '--demo=false wins over PGFEED_DEMO');
  t.equal(c.databaseUrl, 'postgresql://flag/db');
  t.equal(loadConfig(['--demo'], {}).config.demo, true, 'a bare --demo means true');
  t.equal(loadConfig(['--demo', '--port', '1'], {}).config.port, 1, 'a bare --demo does not take the next argument');
  t.equal(loadConfig(['--port', '1', '--port', '2'], {}).config.port, 2, 'the last of a repeated flag wins');
  // Only the value in use is parsed: a bad env var under a flag does not matter.
  t.equal(loadConfig(['--port', '1'], { PGFEED_PORT: 'abc' }).config.port, 1, 'an overridden env value is not parsed');
});

t.test('loadConfig: the settings given are told apart from defaults', async (t) => {
  const { config, given } = loadConfig(['--channel', 'c'], { PGFEED_NOTIFY: 'false' }, MIGRATE_SETTINGS);
  t.same(config, { databaseUrl: '', channel: 'c', notify: false, logLevel: 'info', logFormat: 'auto' }, 'only the settings of the command');
  t.same([...given].sort(), ['channel', 'notify'], 'a flag or an env var is given; a default is not');
});

t.test("loadConfig: another command's env var is ignored, its flag refused", async (t) => {
  t.same(loadConfig([], { PGFEED_PORT: 'abc' }, MIGRATE_SETTINGS).config.logLevel, 'info', 'PGFEED_PORT is not read by migrate, not even parsed');
  t.throws(() => loadConfig(['--port', '1'], {}, MIGRATE_SETTINGS), { code: 'invalid_config', message: /unknown option --port/ });
});

t.test('loadConfig: the result is frozen', async (t) => {
  const c = loadConfig([], {}).config;
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
  // Every unknown PGFEED_ variable is refused, the test and bench tools' own
  // included: they keep them out of the daemons they start. Others are not pgfeed's.
  t.throws(() => loadConfig([], { PGFEED_TEST_DATABASE_URL: 'x' }), { code: 'invalid_config', message: /PGFEED_TEST_DATABASE_URL/ });
  t.doesNotThrow(() => loadConfig([], { OTHER: 'y', PGFEEDX: 'z' }));
});

t.test("loadCommandLine: a command's own flags and its arguments, between the settings", async (t) => {
  const own = { project: { value: 'P', doc: '' }, json: { doc: '' } };
  const line = loadCommandLine(['orders', '--project', 'acme', '--database-url=postgres://h/db', '--json', '--', '-1'], {}, ['databaseUrl'], own);
  t.same(line.positionals, ['orders', '-1'], 'arguments anywhere; after --, even one starting with -');
  t.same(line.flags, { project: 'acme', json: true });
  t.equal(line.config.databaseUrl, 'postgres://h/db');
  t.same([...line.flagged], ['databaseUrl'], 'a setting given by a flag');
  t.same([...loadCommandLine([], { DATABASE_URL: 'postgres://h/db' }, ['databaseUrl'], own).flagged], [], 'one from the env is given, not flagged');
  t.throws(() => loadCommandLine(['--json=yes'], {}, [], own), { code: 'invalid_config', message: /--json takes no value/ });
  t.throws(() => loadCommandLine(['--project'], {}, [], own), { code: 'invalid_config', message: /--project needs a value \(--project P\)/ });
  t.throws(() => loadCommandLine(['--project', '--json'], {}, [], own), { code: 'invalid_config', message: /--project needs a value/ });
  t.throws(() => loadCommandLine(['--nope'], {}, [], own, 'pgfeed track --help'), { code: 'invalid_config', message: /unknown option --nope; see pgfeed track --help/ });
  t.throws(() => loadConfig(['orders'], {}), { code: 'invalid_config', message: /unexpected argument "orders"/ }, 'loadConfig takes no argument');
});

t.test('retention: a duration in one unit or off; a row count or off; unset is null (the database keeps its rules)', async (t) => {
  const c = (env: Record<string, string>) => loadConfig([], env).config;
  t.equal(c({}).retention, null);
  t.equal(c({}).retentionRows, null);
  t.equal(c({ PGFEED_RETENTION: '30s' }).retention, 30);
  t.equal(c({ PGFEED_RETENTION: '15m' }).retention, 900);
  t.equal(c({ PGFEED_RETENTION: '12h' }).retention, 43_200);
  t.equal(c({ PGFEED_RETENTION: '7d' }).retention, 604_800);
  t.equal(c({ PGFEED_RETENTION: 'off' }).retention, 0, 'off clears the rule');
  t.equal(loadConfig(['--retention-rows', '1000000'], {}).config.retentionRows, 1_000_000);
  t.equal(c({ PGFEED_RETENTION_ROWS: 'off' }).retentionRows, 0);
  for (const bad of ['7', '7 days', '0d', '1w', '-1h', '1.5h', '']) {
    t.throws(() => c({ PGFEED_RETENTION: bad }), { code: 'invalid_config', message: /PGFEED_RETENTION must be a duration/ }, JSON.stringify(bad));
  }
  t.throws(() => c({ PGFEED_RETENTION_ROWS: '0' }), { code: 'invalid_config' });
});

t.test('loadConfig: PGFEED_WAKE and PGFEED_NOTIFY follow each other, and refuse to disagree', async (t) => {
  const pick = (env: Record<string, string>) => {
    const c = loadConfig([], env).config;
    return { wake: c.wake, notify: c.notify };
  };
  t.same(pick({}), { wake: 'notify', notify: true }, 'by default writers notify and the daemon listens');
  t.same(pick({ PGFEED_WAKE: 'poll' }), { wake: 'poll', notify: false }, 'a polling daemon wants writers that do not notify');
  t.same(pick({ PGFEED_NOTIFY: 'false' }), { wake: 'poll', notify: false }, 'writers that do not notify need a polling daemon');
  t.same(pick({ PGFEED_WAKE: 'poll', PGFEED_NOTIFY: 'false' }), { wake: 'poll', notify: false });
  t.same(pick({ PGFEED_WAKE: 'notify', PGFEED_NOTIFY: 'true' }), { wake: 'notify', notify: true });
  t.throws(() => loadConfig([], { PGFEED_WAKE: 'poll', PGFEED_NOTIFY: 'true' }), { code: 'invalid_config', message: /^PGFEED_WAKE=poll with PGFEED_NOTIFY=true: .*pgfeed migrate --notify false/ });
  t.throws(() => loadConfig(['--wake', 'notify'], { PGFEED_NOTIFY: 'false' }), { code: 'invalid_config', message: /^PGFEED_NOTIFY=false with PGFEED_WAKE=notify: .*PGFEED_WAKE=poll/ });
  t.throws(() => loadConfig([], { PGFEED_WAKE: 'listen' }), { code: 'invalid_config', message: /PGFEED_WAKE must be one of notify, poll/ });
  t.same(loadConfig([], { PGFEED_WAKE: 'poll' }, MIGRATE_SETTINGS).config.notify, true, 'migrate does not take PGFEED_WAKE: it writes only the notify given');
});
