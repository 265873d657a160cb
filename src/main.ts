import { authEnabled, checkAuthSettings } from './auth/auth.js';
import { backoffDelay, type Backoff } from './backoff.js';
import { checkExposure, type Config } from './config.js';
import { Daemon } from './daemon.js';
import { startEmbedded, type Embedded } from './db/embedded.js';
import { checkMigrated, migrate, type SettingsWrite } from './db/migrate.js';
import type { ClusterSettings } from './db/settings.js';
import { isUnreachable } from './db/query-errors.js';
import { startDemo } from './demo.js';
import { createLogger, type Logger } from './log.js';
import { connectServiceManager } from './service-manager.js';

/** Told of each retry of a start-up step (serve shows it in `systemctl status`). */
type Retried = (message: string) => void;

/** The names of the migrations applied. */
async function migrateWhenUp(url: string, log: Logger, settings: SettingsWrite, onRetry?: Retried): Promise<string[]> {
  let applied: string[] = [];
  await whenUp(log, async () => {
    applied = await migrate(url, settings);
  }, onRetry);
  return applied;
}

/** Up to 500 ms, 1 s, 2 s, 4 s, 8 s, then 10 s between start-up attempts (see backoff.ts). */
const START_RETRY: Backoff = { baseMs: 500, capMs: 10_000 };

/** Runs a start-up step until it succeeds or fails for a reason other than
 *  "the database is not (or no longer) reachable": a restart or a terminated
 *  backend during start-up must delay the daemon, not end it. */
async function whenUp(log: Logger, step: () => Promise<void>, onRetry: Retried = () => {}): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await step();
      return;
    } catch (err) {
      // A migration that lost its connection is wrapped in migration_failed: isUnreachable looks through causes.
      if (!isUnreachable(err)) throw err;
      const delay = backoffDelay(START_RETRY, attempt);
      log.warn({ err: (err as Error).message, retryInMs: Math.round(delay) }, 'database not reachable yet; retrying');
      onRetry(`database not reachable yet (${(err as Error).message}); retrying`);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

const httpBase = (host: string, port: number) => `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

function printHints(config: Config, url: string, port: number, embedded: Embedded | undefined): void {
  const base = httpBase(config.host, port);
  const project = config.demo ? 'demo' : 'my-project';
  const lines = [
    `pgfeed is serving on ${base}`,
    embedded ? `  embedded Postgres (data in ${embedded.dataDir}): psql ${url}` : `  database: ${url.replace(/:[^:@/]*@/, ':***@')}`,
    embedded?.binDir ? `  Postgres binaries copied to ${embedded.binDir}, where the postgres user can reach them` : '',
    `  stream:  curl -N '${base}/v1/events?project=${project}&after=0'`,
    config.demo ? '' : `  track a table: DATABASE_URL=${embedded ? url : '...'} pgfeed track public.orders --project-column tenant`,
  ];
  process.stderr.write(lines.filter(Boolean).join('\n') + '\n');
}

/** The settings `pgfeed migrate` takes. */
export const MIGRATE_SETTINGS = ['databaseUrl', 'channel', 'notify', 'logLevel', 'logFormat'] as const;

/**
 * `pgfeed serve`: migrate, start the daemon, and shut down cleanly on
 * SIGTERM/SIGINT. It writes its channel and notify settings to a shared
 * database only when its own migration created the schema; otherwise
 * Daemon.start() checks that they agree.
 */
export async function serve(config: Config): Promise<void> {
  checkAuthSettings(config);
  // Before anything starts: an exposed unauthenticated daemon is refused, not started.
  const exposed = checkExposure(config, authEnabled(config));
  const log = createLogger(config.logLevel, config.logFormat);
  if (exposed) log.warn({ host: config.host }, 'serving WITHOUT authentication on an address other than loopback (PGFEED_ALLOW_UNAUTHENTICATED=true): anyone who reaches the port can read every project');
  // systemd (Type=notify) is told READY=1 only below, once the port is bound and LISTEN is up.
  const manager = connectServiceManager(log);
  process.on('unhandledRejection', (err) => {
    log.fatal({ err }, 'unhandled rejection');
    process.exit(1);
  });
  let embedded: Embedded | undefined;
  let url = config.databaseUrl;
  if (!url) {
    manager.status('starting the embedded Postgres');
    embedded = await startEmbedded(config.dataDir, config.embeddedPort, log);
    url = embedded.url;
  }
  // An embedded Postgres is this process's alone (no replica shares it, and
  // no `pgfeed migrate` can reach it while serve is down): it follows the
  // configuration. A shared database is only checked.
  const settings = { channel: config.channel, notify: config.notify };
  const daemon = new Daemon(config, url, log);
  try {
    if (config.migrate) {
      manager.status('applying migrations');
      const applied = await migrateWhenUp(url, log, { values: settings, when: embedded ? 'always' : 'created' }, manager.status);
      if (applied.length) log.info({ applied }, 'migrations applied');
    } else {
      // A role that does not own the schema cannot migrate it: the owner does, with pgfeed migrate.
      manager.status('checking migrations');
      await whenUp(log, () => checkMigrated(daemon.pool), manager.status);
    }
    manager.status('starting the feed');
    // Daemon.start() is safe to repeat: its database reads come before any state is set.
    await whenUp(log, () => daemon.start(), manager.status);
  } catch (err) {
    // A server pgfeed started is not left running behind a failed start.
    await daemon.close();
    await embedded?.stop().catch(() => {});
    throw err;
  }
  const stopDemo = config.demo ? await startDemo(daemon.pool, log) : () => {};
  // The hints first: whoever waits for 'listening' finds them written.
  printHints(config, url, daemon.port, embedded);
  log.info({ port: daemon.port, host: config.host }, 'listening');
  manager.ready(`serving on ${httpBase(config.host, daemon.port)}`);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    manager.stopping(`shutting down (${signal}); streams end, clients resume elsewhere`);
    const force = setTimeout(() => {
      log.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown took too long; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    force.unref();
    stopDemo();
    await daemon.close();
    await embedded?.stop().catch(() => {});
    log.info('stopped');
    await manager.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  // SIGHUP re-reads the token keys. Without a handler it would end the
  // process with no graceful shutdown (a closed terminal sends it, too).
  process.on('SIGHUP', () => {
    if (!daemon.authenticating) return log.info({ signal: 'SIGHUP' }, 'nothing to reload; ignored');
    void daemon.reload();
  });
}

/**
 * `pgfeed migrate`: apply pending migrations, write the channel and notify
 * settings given (the others are left as they are), and return the names of
 * the migrations applied. Its log (the retries while the database is not
 * up) goes to stderr: stdout has the command's result.
 */
export async function migrateOnly(url: string, logLevel: Config['logLevel'], values: Partial<ClusterSettings>, logFormat: Config['logFormat']): Promise<string[]> {
  return migrateWhenUp(url, createLogger(logLevel, logFormat, 2), { values, when: 'always' });
}
