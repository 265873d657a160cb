import { isIP } from 'node:net';
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

/** Comma-separated postgres:// URLs (hot standbys), each checked as DATABASE_URL is. */
function databaseUrls(raw: string): readonly string[] {
  const list = raw.split(',').map((u) => u.trim()).filter(Boolean);
  for (const u of list) databaseUrl(u);
  return Object.freeze(list);
}

function channel(raw: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(raw)) throw new Error('must be a lower-case identifier (a-z, 0-9, _), at most 63 characters');
  return raw;
}

function fraction(raw: string): number {
  const n = Number(raw);
  if (!/^(0|1|0?\.\d+|1\.0*)$/.test(raw) || !(n > 0 && n <= 1)) throw new Error('must be a number above 0 and at most 1, e.g. 0.5');
  return n;
}

/** An HS256 key: RFC 7518 asks for at least as many bytes as the hash, 32. */
function secret(raw: string): string {
  if (raw !== '' && Buffer.byteLength(raw) < 32) throw new Error('must be at least 32 bytes (openssl rand -base64 48 makes one)');
  return raw;
}

/** A cookie name (RFC 6265 token): the characters a Cookie header can carry unquoted. */
function cookieName(raw: string): string {
  if (raw !== '' && !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}$/.test(raw)) throw new Error('must be a cookie name: letters, digits and !#$%&\'*+-.^_`|~');
  return raw;
}

/** `30s`, `12h`, `7d` (also `m`) in seconds; `off` is 0: no age rule. */
function duration(raw: string): number {
  if (raw === 'off') return 0;
  const m = /^([1-9]\d{0,8})(s|m|h|d)$/.exec(raw);
  if (!m) throw new Error('must be a duration such as 30s, 15m, 12h or 7d, or off');
  return Number(m[1]) * { s: 1, m: 60, h: 3_600, d: 86_400 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

/** A positive row count; `off` is 0: no row rule. */
function rowCount(raw: string): number {
  if (raw === 'off') return 0;
  return int(1, Number.MAX_SAFE_INTEGER)(raw);
}

const bool = (raw: string): boolean => {
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new Error('must be true or false');
};

/** Comma-separated origins, each exactly as a browser sends it in `Origin` (scheme://host[:port]). */
function origins(raw: string): readonly string[] {
  const list = raw.split(',').map((o) => o.trim()).filter(Boolean);
  for (const o of list) {
    let origin = '';
    try {
      origin = new URL(o).origin;
    } catch {
      // reported below
    }
    if (origin !== o) throw new Error(`must be a comma-separated list of origins such as https://app.example.com (scheme, host and port only, no path or trailing slash); ${JSON.stringify(o.slice(0, 80))} is not one`);
  }
  return Object.freeze(list);
}

/** A request header name, matched lower-cased as uWS delivers it. */
function headerName(raw: string): string {
  if (raw !== '' && !/^[A-Za-z0-9-]{1,64}$/.test(raw)) throw new Error('must be a header name such as X-Forwarded-For (letters, digits and -)');
  return raw.toLowerCase();
}

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
  listenHeartbeatMs: { env: 'PGFEED_LISTEN_HEARTBEAT_MS', flag: '--listen-heartbeat-ms', doc: 'interval of the query that proves the LISTEN connection still answers', default: 5_000, parse: int(100, 600_000) },
  listenTimeoutMs: { env: 'PGFEED_LISTEN_TIMEOUT_MS', flag: '--listen-timeout-ms', doc: 'a LISTEN connection silent this long (no heartbeat answered) is replaced; more than the heartbeat', default: 15_000, parse: int(200, 3_600_000) },
  notifyQueueWarn: { env: 'PGFEED_NOTIFY_QUEUE_WARN', flag: '--notify-queue-warn', doc: 'NOTIFY queue usage (0 to 1) above which the log warns, once per crossing', default: 0.5, parse: fraction },
  migrate: { env: 'PGFEED_MIGRATE', flag: '--migrate', doc: 'whether serve applies pending migrations at start-up; false only checks that none is pending, for a role that does not own the schema', default: true, parse: bool },
  rowSecurity: { env: 'PGFEED_ROW_SECURITY', flag: '--row-security', doc: 'read change_log under its row-level security policies: each read names its project with SET LOCAL (docs/database-role.md)', default: false, parse: bool, bare: 'true' },
  jwtSecret: { env: 'PGFEED_JWT_SECRET', flag: '--jwt-secret', doc: 'HS256 secret that tokens are signed with (at least 32 bytes); any key setting turns authentication on', default: '', parse: secret },
  jwtPublicKeyFile: { env: 'PGFEED_JWT_PUBLIC_KEY_FILE', flag: '--jwt-public-key-file', doc: 'PEM public key (RSA: RS256, P-256: ES256, Ed25519: EdDSA) that tokens are signed with; re-read on SIGHUP or change', default: '', parse: str },
  jwksFile: { env: 'PGFEED_JWKS_FILE', flag: '--jwks-file', doc: 'local JWKS file of public keys, chosen by kid; re-read on SIGHUP or change', default: '', parse: str },
  jwtIssuer: { env: 'PGFEED_JWT_ISSUER', flag: '--jwt-issuer', doc: 'required iss of every token', default: '', parse: str },
  jwtAudience: { env: 'PGFEED_JWT_AUDIENCE', flag: '--jwt-audience', doc: 'required aud of every token (comma-separated: any of them)', default: '', parse: str },
  authCookie: { env: 'PGFEED_AUTH_COOKIE', flag: '--auth-cookie', doc: 'name of a cookie that may carry the token (same-site browsers); empty: cookies are not read', default: '', parse: cookieName },
  allowQueryToken: { env: 'PGFEED_ALLOW_QUERY_TOKEN', flag: '--allow-query-token', doc: 'accept a token in the access_token query parameter (URLs end up in proxy logs: prefer a ticket)', default: false, parse: bool, bare: 'true' },
  ticketTtlMs: { env: 'PGFEED_TICKET_TTL_MS', flag: '--ticket-ttl-ms', doc: 'how long a stream ticket can be redeemed the first time', default: 30_000, parse: int(1_000, 3_600_000) },
  expiryWarningMs: { env: 'PGFEED_EXPIRY_WARNING_MS', flag: '--expiry-warning-ms', doc: 'how long before its token expires a stream gets pgfeed.expiring', default: 60_000, parse: int(0, 86_400_000) },
  maxStreamsPerSubject: { env: 'PGFEED_MAX_STREAMS_PER_SUBJECT', flag: '--max-streams-per-subject', doc: 'open streams and long-polls one token subject may hold on this daemon (429 subject_over_limit; an EventSource is asked to retry)', default: 100, parse: int(1, 1_000_000) },
  operatorToken: { env: 'PGFEED_OPERATOR_TOKEN', flag: '--operator-token', doc: 'bearer token that /metrics and the /readyz detail require (at least 32 bytes); empty: they are open', default: '', parse: secret },
  retention: { env: 'PGFEED_RETENTION', flag: '--retention', doc: 'prune events older than this (30s, 12h, 7d) or off; unset, this daemon leaves the database\'s rules and does not prune (docs/retention.md)', default: null as number | null, parse: duration },
  retentionRows: { env: 'PGFEED_RETENTION_ROWS', flag: '--retention-rows', doc: 'prune events once this many newer seqs exist, or off; unset as for --retention', default: null as number | null, parse: rowCount },
  pruneIntervalMs: { env: 'PGFEED_PRUNE_INTERVAL_MS', flag: '--prune-interval-ms', doc: 'how often a pruning daemon starts a pass', default: 10_000, parse: int(100, 86_400_000) },
  pruneStepRows: { env: 'PGFEED_PRUNE_STEP_ROWS', flag: '--prune-step-rows', doc: 'most rows one pruning step (one transaction) removes', default: 2_000, parse: int(1, 1_000_000) },
  ui: { env: 'PGFEED_UI', flag: '--ui', doc: 'the inspector at /ui and its operator view: auto serves them when the host is a loopback address, on everywhere, off nowhere', default: 'auto' as const, parse: oneOf('auto', 'on', 'off') },
  allowUnauthenticated: { env: 'PGFEED_ALLOW_UNAUTHENTICATED', flag: '--allow-unauthenticated', doc: 'serve without authentication on an address other than loopback (anyone who reaches the port reads every project)', default: false, parse: bool, bare: 'true' },
  corsOrigins: { env: 'PGFEED_CORS_ORIGINS', flag: '--cors-origins', doc: 'comma-separated origins whose browser pages may read pgfeed (with credentials); none by default', default: Object.freeze([]) as readonly string[], parse: origins },
  trustedProxyHeader: { env: 'PGFEED_TRUSTED_PROXY_HEADER', flag: '--trusted-proxy-header', doc: 'header that a proxy in front sets to the client address (X-Forwarded-For: its last entry); unset, the peer address is the client', default: '', parse: headerName },
  maxStreamsPerIp: { env: 'PGFEED_MAX_STREAMS_PER_IP', flag: '--max-streams-per-ip', doc: 'open streams and long-polls one client address may hold (429 too_many_streams); 0: no limit', default: 0, parse: int(0, 1_000_000) },
  requestsPerSecondPerIp: { env: 'PGFEED_REQUESTS_PER_SECOND_PER_IP', flag: '--requests-per-second-per-ip', doc: 'new /v1 requests (each a new stream or poll) one client address may make per second, in bursts of as many (429 rate_limited); 0: no limit', default: 0, parse: int(0, 1_000_000) },
  readUrl: { env: 'PGFEED_READ_URL', flag: '--read-url', doc: 'comma-separated hot standbys of DATABASE_URL for catch-up reads; the primary keeps LISTEN, the tail, cursor lookups and every write, and answers whatever no standby can (docs/ordering.md, "Standbys and failover")', default: Object.freeze([]) as readonly string[], parse: databaseUrls },
  wake: { env: 'PGFEED_WAKE', flag: '--wake', doc: 'how the daemon learns of commits: notify (writers NOTIFY) or poll (writers never notify, sparing them NOTIFY\'s commit lock; the daemon asks Postgres every PGFEED_WAKE_POLL_MS); PGFEED_NOTIFY follows it, and the reverse', default: 'notify' as const, parse: oneOf('notify', 'poll') },
  wakePollMs: { env: 'PGFEED_WAKE_POLL_MS', flag: '--wake-poll-ms', doc: 'with PGFEED_WAKE=poll, the interval of the query that finds new commits: the most it adds to an event\'s latency', default: 5, parse: int(1, 60_000) },
  catchupStreamBytes: { env: 'PGFEED_CATCHUP_STREAM_BYTES', flag: '--catchup-stream-bytes', doc: 'most bytes of frames one catching-up stream holds, whatever its client\'s read speed: read from Postgres and not yet sent, plus what its socket could not take; one batch gets half (an event larger than that is read alone)', default: 512 * 1024, parse: int(64 * 1024, 1024 * 1024 * 1024) },
} satisfies Record<string, Setting<unknown>>;

/**
 * Settings that follow another one given alone, when a command takes both:
 * writers that never notify need a daemon that polls, and a daemon that
 * polls wants writers spared the NOTIFY. Given both, they must agree (RULES).
 */
const FOLLOWS: readonly { readonly key: SettingKey; readonly from: SettingKey; readonly value: (c: Partial<Record<SettingKey, unknown>>) => unknown }[] = [
  { key: 'notify', from: 'wake', value: (c) => c.wake === 'notify' },
  { key: 'wake', from: 'notify', value: (c) => (c.notify ? 'notify' : 'poll') },
];

/** Rules between settings, checked when a command takes all the settings a rule names. */
const RULES: readonly { readonly keys: readonly SettingKey[]; readonly check: (c: Partial<Record<SettingKey, unknown>>) => string | null }[] = [
  {
    // The heartbeat is what keeps a healthy connection from looking silent.
    keys: ['listenTimeoutMs', 'listenHeartbeatMs'],
    check: (c) => ((c.listenTimeoutMs as number) > (c.listenHeartbeatMs as number)
      ? null
      : `PGFEED_LISTEN_TIMEOUT_MS (${c.listenTimeoutMs}) must be greater than PGFEED_LISTEN_HEARTBEAT_MS (${c.listenHeartbeatMs}), or a healthy LISTEN connection would be replaced between two heartbeats`),
  },
  {
    keys: ['wake', 'notify'],
    check: (c) => (c.notify === (c.wake === 'notify')
      ? null
      : c.notify
        ? 'PGFEED_WAKE=poll with PGFEED_NOTIFY=true: a polling daemon needs no NOTIFY, and writers that send one still queue behind its commit lock; leave PGFEED_NOTIFY out (it follows PGFEED_WAKE) and run pgfeed migrate --notify false'
        : 'PGFEED_NOTIFY=false with PGFEED_WAKE=notify: the daemon would wait for notifications no writer sends, and find changes only on the safety poll; leave PGFEED_WAKE out, or set PGFEED_WAKE=poll'),
  },
];

/**
 * The environment of the commands that read a daemon instead of running one
 * (`pgfeed tail`). They are not settings of serve, so they are not in
 * SETTINGS, but they are known, so they are not refused as typos.
 */
export const CLIENT_ENV = { url: 'PGFEED_URL', token: 'PGFEED_TOKEN' } as const;

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
  /** The settings given by a flag. */
  readonly flagged: ReadonlySet<K>;
}

/**
 * A flag of one command that is not a setting: no env var, no default
 * (`pgfeed track --project P`, `--json`).
 */
export interface CommandFlag {
  /** The value's name in the usage (`P`); absent, the flag stands alone and takes no value. */
  readonly value?: string;
  readonly doc: string;
}

/** A command line: its settings, its own flags and its arguments. */
export interface CommandLine<K extends SettingKey, F extends string> extends Loaded<K> {
  /** Each flag given: its value, or true for a flag that stands alone. */
  readonly flags: Readonly<Partial<Record<F, string | true>>>;
  readonly positionals: readonly string[];
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
  const { config, given, flagged, positionals } = loadCommandLine(argv, env, keys, {});
  if (positionals.length) throw invalid(`unexpected argument ${JSON.stringify(positionals[0].slice(0, 80))}; see pgfeed --help`);
  return { config, given, flagged };
}

/** loadConfig for a command that also takes flags of its own and arguments; `help` is where its usage is. */
export function loadCommandLine<K extends SettingKey, F extends string>(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  keys: readonly K[],
  own: Readonly<Record<F, CommandFlag>>,
  help = 'pgfeed --help',
): CommandLine<K, F> {
  const envNames = new Set<string>([...ALL.map((k) => SETTINGS[k].env), ...Object.values(CLIENT_ENV)]);
  for (const name of Object.keys(env)) {
    if (name.startsWith('PGFEED_') && !envNames.has(name)) throw invalid(`unknown setting ${name}; see pgfeed --help for the list`);
  }
  const parsed = parseFlags(argv, keys, own, help);
  const out: Record<string, unknown> = {};
  const given = new Set<K>();
  for (const key of keys) {
    const s: Setting<unknown> = SETTINGS[key];
    const raw = parsed.settings.get(key) ?? env[s.env];
    if (raw === undefined) {
      out[key] = s.default;
      continue;
    }
    given.add(key);
    try {
      out[key] = s.parse(raw);
    } catch (err) {
      const where = parsed.settings.has(key) ? s.flag : s.env;
      throw invalid(`${where} ${(err as Error).message} (got ${JSON.stringify(raw.slice(0, 80))})`);
    }
  }
  for (const f of FOLLOWS) {
    if (keys.includes(f.key as K) && !given.has(f.key as K) && given.has(f.from as K)) out[f.key] = f.value(out);
  }
  for (const rule of RULES) {
    if (!rule.keys.every((k) => (keys as readonly SettingKey[]).includes(k))) continue;
    const problem = rule.check(out);
    if (problem) throw invalid(problem);
  }
  return {
    config: Object.freeze(out) as Pick<Config, K>,
    given,
    flagged: new Set(parsed.settings.keys()),
    flags: Object.freeze(Object.fromEntries(parsed.own)) as Partial<Record<F, string | true>>,
    positionals: parsed.positionals,
  };
}

/**
 * The raw value of each flag given, and the arguments. Every setting's flag
 * takes a value (`--port 9000` or `--port=9000`) except a boolean that may
 * stand alone (`--demo`, which does not take the next argument); a
 * command's own flag takes one if it names it. The last of a repeated flag
 * wins.
 */
function parseFlags<K extends SettingKey, F extends string>(
  argv: readonly string[],
  keys: readonly K[],
  own: Readonly<Record<F, CommandFlag>>,
  help: string,
): { settings: Map<K, string>; own: Map<F, string | true>; positionals: string[] } {
  const byName = new Map(keys.map((k) => [SETTINGS[k].flag.slice(2), k]));
  const ownNames = Object.keys(own) as F[];
  const standsAlone = (name: string) => (byName.has(name) ? 'bare' in SETTINGS[byName.get(name)!] : own[name as F]?.value === undefined);
  // strict: false, so that a flag's problems are reported in pgfeed's own words, naming the flag.
  const { tokens } = parseArgs({
    args: [...argv],
    options: Object.fromEntries([...byName.keys(), ...ownNames].map((name) => [name, { type: standsAlone(name) ? 'boolean' : 'string' }] as const)),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const out = { settings: new Map<K, string>(), own: new Map<F, string | true>(), positionals: [] as string[] };
  for (const tok of tokens) {
    if (tok.kind === 'option-terminator') continue;
    if (tok.kind === 'positional') {
      out.positionals.push(tok.value);
      continue;
    }
    const long = tok.rawName.startsWith('--');
    const key = long ? byName.get(tok.name) : undefined;
    const flag = long && Object.hasOwn(own, tok.name) ? (tok.name as F) : undefined;
    if (key === undefined && flag === undefined) throw invalid(`unknown option ${tok.rawName}; see ${help}`);
    let value = tok.value;
    // `--port --host x`: the next flag is not a value.
    if (value !== undefined && !tok.inlineValue && value.startsWith('--')) value = undefined;
    if (flag !== undefined) {
      const wants = own[flag].value;
      if (wants === undefined && value !== undefined) throw invalid(`${tok.rawName} takes no value`);
      if (wants !== undefined && value === undefined) throw invalid(`${tok.rawName} needs a value (${tok.rawName} ${wants})`);
      out.own.set(flag, value ?? true);
      continue;
    }
    const s: Setting<unknown> = SETTINGS[key!];
    if (value === undefined) {
      if (s.bare === undefined) throw invalid(`${s.flag} needs a value`);
      value = s.bare;
    }
    out.settings.set(key!, value);
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

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and localhost: only this host can connect. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  const v = isIP(host);
  if (v === 4) return host.startsWith('127.');
  // The URL parser writes every spelling of an IPv6 address one way: [::1], [::ffff:7f00:1].
  if (v === 6) return /^\[(::1|::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4})\]$/.test(new URL(`http://[${host}]`).hostname);
  return false;
}

/**
 * An unauthenticated daemon hands every project to whoever reaches its
 * port: it binds to loopback unless told in so many words that the network
 * in front is the wall. Returns whether the bind is open (to warn about).
 */
export function checkExposure(config: Pick<Config, 'host' | 'allowUnauthenticated'>, authOn: boolean): boolean {
  if (authOn || isLoopback(config.host)) return false;
  if (!config.allowUnauthenticated) {
    throw invalid(`PGFEED_HOST ${JSON.stringify(config.host)} is not a loopback address and no authentication is configured, so anyone who reaches the port could read every project; bind to 127.0.0.1, or set PGFEED_ALLOW_UNAUTHENTICATED=true if a firewall or proxy in front is the access control`);
  }
  return true;
}
