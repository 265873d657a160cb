import { readdir, readFile } from 'node:fs/promises';
import pg from 'pg';
import { PgfeedError } from '../errors.js';
import { writeSettings, type ClusterSettings } from './settings.js';

const SQL_DIR = new URL('../../sql/', import.meta.url);

/** Held for the whole run, so two processes migrating at once take turns. */
const MIGRATION_LOCK = 0x70676665; // "pgfe"

export interface Migration {
  readonly id: number;
  readonly name: string;
  readonly sql: string;
}

export async function loadMigrations(dir: URL = SQL_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f)).sort();
  return Promise.all(
    files.map(async (name) => ({
      id: Number(name.slice(0, 3)),
      name,
      sql: await readFile(new URL(name, dir), 'utf8'),
    })),
  );
}

/** The ids of the migrations applied; throws database_too_new for one this pgfeed does not know. */
async function appliedIds(db: Pick<pg.ClientBase | pg.Pool, 'query'>, migrations: readonly Migration[]): Promise<Set<number>> {
  const { rows } = await db.query<{ id: number }>('SELECT id FROM pgfeed.migrations');
  const done = new Set(rows.map((r) => r.id));
  const newest = Math.max(0, ...done);
  const known = migrations.at(-1)?.id ?? 0;
  if (newest > known) {
    throw new PgfeedError('database_too_new', `The database has pgfeed migration ${newest}; this pgfeed knows up to ${known}. Upgrade pgfeed.`);
  }
  return done;
}

/** Whose privilege `pgfeed migrate` needs: a role that does not own the schema cannot migrate. */
const MIGRATE_HINT = 'run pgfeed migrate as the role that owns the pgfeed schema (docs/database-role.md)';

/**
 * For a serve that does not migrate (PGFEED_MIGRATE=false): refuses a
 * database with a migration pending, which this pgfeed's queries may need,
 * or migrated by a newer pgfeed.
 */
export async function checkMigrated(db: Pick<pg.Pool, 'query'>): Promise<void> {
  const migrations = await loadMigrations();
  let done: Set<number>;
  try {
    done = await appliedIds(db, migrations);
  } catch (err) {
    // 3F000: no pgfeed schema; 42P01: no migrations table in it.
    const code = (err as { code?: string }).code;
    if (code === '3F000' || code === '42P01') throw new PgfeedError('database_not_migrated', `The database has no pgfeed schema; ${MIGRATE_HINT}.`, { cause: err });
    throw err;
  }
  const pending = migrations.filter((m) => !done.has(m.id)).map((m) => m.name);
  if (pending.length) throw new PgfeedError('database_not_migrated', `The database lacks pgfeed migrations ${pending.join(', ')}; ${MIGRATE_HINT}, then start serve again.`);
}

/**
 * Settings to write to pgfeed.settings once migrated, still under the
 * migration lock: a second process that migrates (or a `serve` that then
 * checks them) sees them written. `when: 'created'` writes them only if this
 * run created pgfeed's schema, i.e. on a brand-new database.
 */
export interface SettingsWrite {
  readonly values: Partial<ClusterSettings>;
  readonly when: 'always' | 'created';
}

/**
 * Applies the pending files of sql/ in order, each in its own transaction.
 * Returns the names applied now (empty when the database was up to date).
 */
export async function migrate(connectionString: string, settings?: SettingsWrite): Promise<string[]> {
  const migrations = await loadMigrations();
  const client = new pg.Client({ connectionString, application_name: 'pgfeed:migrate' });
  // A lost connection also rejects the query in flight, which is what the
  // caller sees; without a listener pg's 'error' event would crash the process.
  client.on('error', () => {});
  await client.connect();
  const applied: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS pgfeed;
      CREATE TABLE IF NOT EXISTS pgfeed.migrations (
        id int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = await appliedIds(client, migrations);
    for (const m of migrations) {
      if (done.has(m.id)) continue;
      try {
        await client.query('BEGIN');
        // Bookkeeping first: a concurrent migrator without the lock would collide here.
        await client.query('INSERT INTO pgfeed.migrations (id, name) VALUES ($1, $2)', [m.id, m.name]);
        await client.query(m.sql);
        await client.query('COMMIT');
        applied.push(m.name);
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw new PgfeedError('migration_failed', `Migration ${m.name} failed: ${(err as Error).message}`, { cause: err });
      }
    }
    if (settings && (settings.when === 'always' || done.size === 0)) await writeSettings(client, settings.values);
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {});
    await client.end();
  }
  return applied;
}
