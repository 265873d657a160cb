import { PgfeedError } from './errors.js';

/**
 * Every setting, once. Each has an env var and a CLI flag that mirror each
 * other (`PGFEED_HEARTBEAT_MS` ↔ `--heartbeat-ms`); a flag wins over the env.
 * Values are validated once at start-up and the result is frozen.
 */
interface Setting<T> {
  readonly env: string;
  readonly flag: string;
  readonly doc: string;
  readonly default: T;
  readonly parse: (raw: string) => T;
}

function int(min: number, max: number) {
  return (raw: string): number => {
    if (!/^-?\d+$/.test(raw)) throw new Error(`must be an integer from ${min} to ${max}`);
    const n = Number(raw);
    if (n < min || n > max) throw new Error(`must be an integer from ${min} to ${max}`);
    return n;
  };
}

const str = (raw: string): string => raw;

function oneOf<T extends string>(...values: T[]) {
  return (raw: string): T => {
    if (!values.includes(raw as T)) throw new Error(`must be one of ${values.join(', ')}`);
    return raw as T;
  };
}

function databaseUrl(raw: string): string {
  if (raw === '') return raw;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error('must be a postgres:// URL, e.g. postgres://user:pass@host:5432/db');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error('must start with postgres:// or postgresql://');
  return raw;
}

function channel(raw: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(raw)) throw new Error('must be a lower-case identifier (a-z, 0-9, _), at most 63 characters');
  return raw;
}

const bool = (raw: string): boolean => {
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new Error('must be true or false');
};

export const SETTINGS = {
  databaseUrl: { env: 'DATABASE_URL', flag: '--database-url', doc: 'Postgres to serve from; unset runs an embedded Postgres', default: '', parse: databaseUrl },
  host: { env: 'PGFEED_HOST', flag: '--host', doc: 'address to listen on', default: '127.0.0.1', parse: str },
  port: { env: 'PGFEED_PORT', flag: '--port', doc: 'port to listen on; 0 picks a free one', default: 8787, parse: int(0, 65535) },
  channel: { env: 'PGFEED_CHANNEL', flag: '--channel', doc: 'NOTIFY channel the triggers use', default: 'pgfeed', parse: channel },
  notify: { env: 'PGFEED_NOTIFY', flag: '--notify', doc: 'whether writers NOTIFY; false spares them the commit-time notify lock, and changes are found by the safety poll alone', default: true, parse: bool },
  heartbeatMs: { env: 'PGFEED_HEARTBEAT_MS', flag: '--heartbeat-ms', doc: 'interval of `: ping` comments on idle streams', default: 15_000, parse: int(1_000, 300_000) },
  logLevel: { env: 'PGFEED_LOG_LEVEL', flag: '--log-level', doc: 'pino log level', default: 'info' as const, parse: oneOf('trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent') },
  pollMs: { env: 'PGFEED_POLL_MS', flag: '--poll-ms', doc: 'safety poll: the most a lost NOTIFY can delay an event', default: 1_000, parse: int(50, 60_000) },
  heldPollMs: { env: 'PGFEED_HELD_POLL_MS', flag: '--held-poll-ms', doc: 'poll interval while rows wait behind the xmin horizon', default: 25, parse: int(10, 10_000) },
  horizonStallMs: { env: 'PGFEED_HORIZON_STALL_MS', flag: '--horizon-stall-ms', doc: 'how long rows may wait behind the horizon before /readyz reports a stall', default: 30_000, parse: int(1_000, 86_400_000) },
  ringEvents: { env: 'PGFEED_RING_EVENTS', flag: '--ring-events', doc: 'most events kept in the in-memory ring', default: 65_536, parse: int(512, 10_000_000) },
  ringBytes: { env: 'PGFEED_RING_BYTES', flag: '--ring-bytes', doc: 'most bytes of frames kept in the ring', default: 64 * 1024 * 1024, parse: int(64 * 1024, 8 * 1024 * 1024 * 1024) },
  maxStreams: { env: 'PGFEED_MAX_STREAMS', flag: '--max-streams', doc: 'open SSE streams and long-polls beyond which requests get 503', default: 20_000, parse: int(1, 1_000_000) },
  catchupConcurrency: { env: 'PGFEED_CATCHUP_CONCURRENCY', flag: '--catchup-concurrency', doc: 'most catch-up queries running at once; the rest wait their turn', default: 4, parse: int(1, 256) },
  poolSize: { env: 'PGFEED_POOL_SIZE', flag: '--pool-size', doc: 'query connections (catch-up, lookups, polls)', default: 8, parse: int(2, 500) },
  slowClientTimeoutMs: { env: 'PGFEED_SLOW_CLIENT_TIMEOUT_MS', flag: '--slow-client-timeout-ms', doc: 'a paused stream that makes no progress for this long is closed (it can resume)', default: 60_000, parse: int(1_000, 86_400_000) },
  shutdownTimeoutMs: { env: 'PGFEED_SHUTDOWN_TIMEOUT_MS', flag: '--shutdown-timeout-ms', doc: 'most time a graceful shutdown may take', default: 10_000, parse: int(100, 600_000) },
  retryMs: { env: 'PGFEED_RETRY_MS', flag: '--retry-ms', doc: 'base of the jittered SSE `retry:` hint', default: 2_000, parse: int(100, 600_000) },
  dataDir: { env: 'PGFEED_DATA_DIR', flag: '--data-dir', doc: 'embedded Postgres data directory', default: '.pgfeed/db', parse: str },
  embeddedPort: { env: 'PGFEED_EMBEDDED_PORT', flag: '--embedded-port', doc: 'embedded Postgres port (outside the ephemeral range, so no client socket holds it)', default: 15432, parse: int(1, 65535) },
  demo: { env: 'PGFEED_DEMO', flag: '--demo', doc: 'create and track a demo table and write a few changes per second', default: false, parse: bool },
} satisfies Record<string, Setting<unknown>>;

type Settings = typeof SETTINGS;
export type Config = { readonly [K in keyof Settings]: ReturnType<Settings[K]['parse']> };

/** Env vars that look like pgfeed's but are read elsewhere (tests, tools). */
const FOREIGN_ENV = /^PGFEED_(TEST_|FAULTS_|BENCH_)/;

export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Config {
  const out: Record<string, unknown> = {};
  const byFlag = new Map(Object.entries(SETTINGS).map(([k, s]) => [s.flag, k]));
  const envNames = new Set(Object.values(SETTINGS).map((s) => s.env));
  for (const name of Object.keys(env)) {
    if (name.startsWith('PGFEED_') && !envNames.has(name) && !FOREIGN_ENV.test(name)) {
      throw new PgfeedError('invalid_config', `unknown setting ${name}; see pgfeed --help for the list`);
    }
  }
  const fromFlags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const key = byFlag.get(flag);
    if (!key) throw new PgfeedError('invalid_config', `unknown option ${flag}; see pgfeed --help`);
    let value: string | undefined = eq > 0 ? arg.slice(eq + 1) : undefined;
    if (value === undefined) {
      if (key === 'demo') value = 'true';
      else if (i + 1 < argv.length) value = argv[++i];
      else throw new PgfeedError('invalid_config', `${flag} needs a value`);
    }
    fromFlags.set(key, value);
  }
  for (const [key, s] of Object.entries(SETTINGS) as [keyof Settings, Setting<unknown>][]) {
    const raw = fromFlags.get(key) ?? env[s.env];
    if (raw === undefined) {
      out[key] = s.default;
      continue;
    }
    try {
      out[key] = s.parse(raw);
    } catch (err) {
      const where = fromFlags.has(key) ? s.flag : s.env;
      throw new PgfeedError('invalid_config', `${where} ${(err as Error).message} (got ${JSON.stringify(raw.slice(0, 80))})`);
    }
  }
  return Object.freeze(out) as Config;
}

export function settingsHelp(): string {
  return Object.values(SETTINGS)
    .map((s) => `  ${(s.flag + ' / ' + s.env).padEnd(62)} ${s.doc} (default ${JSON.stringify(s.default)})`)
    .join('\n');
}
