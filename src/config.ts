import { parseArgs } from 'node:util';
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
  /** The value a flag given alone means (`--demo`); without it, a flag needs a value. */
  readonly bare?: string;
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
  databaseUrl: { env: 'DATABASE_URL', flag: '--database-url', doc: 'the Postgres database; unset, serve runs an embedded Postgres', default: '', parse: databaseUrl },
  host: { env: 'PGFEED_HOST', flag: '--host', doc: 'address to listen on', default: '127.0.0.1', parse: str },
  port: { env: 'PGFEED_PORT', flag: '--port', doc: 'port to listen on; 0 picks a free one', default: 8787, parse: int(0, 65535) },
  channel: { env: 'PGFEED_CHANNEL', flag: '--channel', doc: 'NOTIFY channel the triggers use', default: 'pgfeed', parse: channel },
  notify: { env: 'PGFEED_NOTIFY', flag: '--notify', doc: 'whether writers NOTIFY; false spares them the commit-time notify lock, and changes are found by the safety poll alone', default: true, parse: bool },
  heartbeatMs: { env: 'PGFEED_HEARTBEAT_MS', flag: '--heartbeat-ms', doc: 'interval of `: ping` comments on idle streams', default: 15_000, parse: int(1_000, 300_000) },
  logLevel: { env: 'PGFEED_LOG_LEVEL', flag: '--log-level', doc: 'pino log level', default: 'info' as const, parse: oneOf('trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent') },
  logFormat: { env: 'PGFEED_LOG_FORMAT', flag: '--log-format', doc: 'json (lines for journald), pretty (for people), or auto: pretty on a terminal, JSON otherwise', default: 'auto' as const, parse: oneOf('auto', 'json', 'pretty') },
  pollMs: { env: 'PGFEED_POLL_MS', flag: '--poll-ms', doc: 'safety poll: the most a lost NOTIFY can delay an event', default: 1_000, parse: int(50, 60_000) },
  heldPollMs: { env: 'PGFEED_HELD_POLL_MS', flag: '--held-poll-ms', doc: 'poll interval while rows wait behind the xmin horizon', default: 25, parse: int(10, 10_000) },
  horizonStallMs: { env: 'PGFEED_HORIZON_STALL_MS', flag: '--horizon-stall-ms', doc: 'how long rows may wait behind the horizon before /readyz reports a stall', default: 30_000, parse: int(1_000, 86_400_000) },
  ringEvents: { env: 'PGFEED_RING_EVENTS', flag: '--ring-events', doc: 'most events kept in the in-memory ring', default: 65_536, parse: int(512, 10_000_000) },
  ringBytes: { env: 'PGFEED_RING_BYTES', flag: '--ring-bytes', doc: 'most bytes of frames kept in the ring', default: 64 * 1024 * 1024, parse: int(64 * 1024, 8 * 1024 * 1024 * 1024) },
  maxStreams: { env: 'PGFEED_MAX_STREAMS', flag: '--max-streams', doc: 'open SSE streams and long-polls beyond which requests are refused (503 over_capacity; an EventSource is asked to retry)', default: 20_000, parse: int(1, 1_000_000) },
  catchupConcurrency: { env: 'PGFEED_CATCHUP_CONCURRENCY', flag: '--catchup-concurrency', doc: 'most catch-up queries running at once; the rest wait their turn', default: 4, parse: int(1, 256) },
  poolSize: { env: 'PGFEED_POOL_SIZE', flag: '--pool-size', doc: 'query connections (catch-up, lookups, polls)', default: 8, parse: int(2, 500) },
  slowClientTimeoutMs: { env: 'PGFEED_SLOW_CLIENT_TIMEOUT_MS', flag: '--slow-client-timeout-ms', doc: 'a paused stream that makes no progress for this long is closed (it can resume)', default: 60_000, parse: int(1_000, 86_400_000) },
  shutdownTimeoutMs: { env: 'PGFEED_SHUTDOWN_TIMEOUT_MS', flag: '--shutdown-timeout-ms', doc: 'most time a graceful shutdown may take', default: 10_000, parse: int(100, 600_000) },
  retryMs: { env: 'PGFEED_RETRY_MS', flag: '--retry-ms', doc: 'base of the jittered SSE `retry:` hint', default: 2_000, parse: int(100, 600_000) },
  dataDir: { env: 'PGFEED_DATA_DIR', flag: '--data-dir', doc: 'embedded Postgres data directory', default: '.pgfeed/db', parse: str },
  embeddedPort: { env: 'PGFEED_EMBEDDED_PORT', flag: '--embedded-port', doc: 'embedded Postgres port (outside the ephemeral range, so no client socket holds it)', default: 15432, parse: int(1, 65535) },
  demo: { env: 'PGFEED_DEMO', flag: '--demo', doc: 'create and track a demo table and write a few changes per second', default: false, parse: bool, bare: 'true' },
} satisfies Record<string, Setting<unknown>>;

type Settings = typeof SETTINGS;
export type SettingKey = keyof Settings;
export type Config = { readonly [K in SettingKey]: ReturnType<Settings[K]['parse']> };

const ALL = Object.keys(SETTINGS) as SettingKey[];

/** A command's settings, each from its flag, its env var or its default. */
export interface Loaded<K extends SettingKey> {
  /** Frozen. */
  readonly config: Pick<Config, K>;
  /** The settings given by a flag or an env var, not defaulted. */
  readonly given: ReadonlySet<K>;
}

const invalid = (message: string) => new PgfeedError('invalid_config', message);

/**
 * Reads the settings `keys` of a command: its flags (parsed with node:util's
 * parseArgs), then the env. Only these settings are flags of the command; an
 * env var of another command's setting is ignored, since one environment
 * file may serve several commands, but an unknown PGFEED_* variable is
 * refused: it is a typo, or a setting this version does not have.
 */
export function loadConfig<K extends SettingKey = SettingKey>(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  keys: readonly K[] = ALL as K[],
): Loaded<K> {
  const envNames = new Set(ALL.map((k) => SETTINGS[k].env));
  for (const name of Object.keys(env)) {
    if (name.startsWith('PGFEED_') && !envNames.has(name)) throw invalid(`unknown setting ${name}; see pgfeed --help for the list`);
  }
  const fromFlags = parseFlags(argv, keys);
  const out: Record<string, unknown> = {};
  const given = new Set<K>();
  for (const key of keys) {
    const s: Setting<unknown> = SETTINGS[key];
    const raw = fromFlags.get(key) ?? env[s.env];
    if (raw === undefined) {
      out[key] = s.default;
      continue;
    }
    given.add(key);
    try {
      out[key] = s.parse(raw);
    } catch (err) {
      const where = fromFlags.has(key) ? s.flag : s.env;
      throw invalid(`${where} ${(err as Error).message} (got ${JSON.stringify(raw.slice(0, 80))})`);
    }
  }
  return { config: Object.freeze(out) as Pick<Config, K>, given };
}

/**
 * The raw value of each flag given. Every flag takes a value (`--port 9000`
 * or `--port=9000`) except a boolean that may stand alone (`--demo`, which
 * does not take the next argument). The last of a repeated flag wins.
 */
function parseFlags<K extends SettingKey>(argv: readonly string[], keys: readonly K[]): Map<K, string> {
  const byName = new Map(keys.map((k) => [SETTINGS[k].flag.slice(2), k]));
  // strict: false, so that a flag's problems are reported in pgfeed's own words, naming the flag.
  const { tokens } = parseArgs({
    args: [...argv],
    options: Object.fromEntries(keys.map((k) => [SETTINGS[k].flag.slice(2), { type: 'bare' in SETTINGS[k] ? 'boolean' : 'string' }] as const)),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const out = new Map<K, string>();
  for (const tok of tokens) {
    if (tok.kind === 'option-terminator') continue;
    if (tok.kind === 'positional') throw invalid(`unexpected argument ${JSON.stringify(tok.value.slice(0, 80))}; see pgfeed --help`);
    const key = tok.rawName.startsWith('--') ? byName.get(tok.name) : undefined;
    if (key === undefined) throw invalid(`unknown option ${tok.rawName}; see pgfeed --help`);
    const s: Setting<unknown> = SETTINGS[key];
    let value = tok.value;
    // `--port --host x`: the next flag is not a value.
    if (value !== undefined && !tok.inlineValue && value.startsWith('--')) value = undefined;
    if (value === undefined) {
      if (s.bare === undefined) throw invalid(`${s.flag} needs a value`);
      value = s.bare;
    }
    out.set(key, value);
  }
  return out;
}

/** One line per setting of `keys`: flag, env var, meaning and default. */
export function settingsHelp(keys: readonly SettingKey[] = ALL): string {
  return keys
    .map((k): Setting<unknown> => SETTINGS[k])
    .map((s) => `  ${(s.flag + ' / ' + s.env).padEnd(62)} ${s.doc} (default ${JSON.stringify(s.default)})`)
    .join('\n');
}
