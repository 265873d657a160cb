import pg from 'pg';
import { usage } from './command.js';

/** Where a URL points, without its password: `host:port/database`. */
export function whereTo(url: string): string {
  const u = new URL(url);
  return `${u.hostname || 'localhost'}:${u.port || 5432}${u.pathname.length > 1 ? u.pathname : ''}`;
}

/** Every command but serve works on a database of the user's: none starts an embedded Postgres. */
export function needDatabase(command: string, url: string): string {
  if (!url) throw usage(`pgfeed ${command} needs DATABASE_URL (or --database-url); only serve starts an embedded Postgres`);
  return url;
}

/** A connection for a one-shot command, named for pg_stat_activity; a failure to connect names where it tried. */
export async function connect(command: string, url: string, extra: pg.ClientConfig = {}): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: needDatabase(command, url), application_name: `pgfeed:${command}`, connectionTimeoutMillis: 10_000, ...extra });
  // A lost connection also rejects the query in flight; without a listener pg's 'error' event would end the process first.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    throw new Error(`cannot connect to ${whereTo(url)}: ${(err as Error).message || (err as { code?: string }).code}`, { cause: err });
  }
  return client;
}

/**
 * Runs `fn` on a connection to a database pgfeed has migrated, then closes
 * it. A database without pgfeed's schema is named as such, rather than by
 * the first missing function or table.
 */
export async function withDatabase<T>(command: string, url: string, fn: (db: pg.Client) => Promise<T>): Promise<T> {
  const db = await connect(command, url);
  try {
    const { rows } = await db.query<{ migrated: boolean }>(`SELECT to_regclass('pgfeed.migrations') IS NOT NULL AS migrated`);
    if (!rows[0].migrated) throw new Error(`${whereTo(url)} has no pgfeed schema; run pgfeed migrate first`);
    return await fn(db);
  } finally {
    await db.end().catch(() => {});
  }
}
