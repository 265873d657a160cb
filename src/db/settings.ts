import type pg from 'pg';
import { PgfeedError } from '../errors.js';

/**
 * The settings in pgfeed.settings that every writer's trigger reads: the
 * channel it notifies on, and whether it notifies at all. They are one per
 * database, shared by every replica, so a daemon never writes them from its
 * own configuration: `pgfeed migrate` does (and `serve` on a database whose
 * schema it has just created), and `serve` checks them at start-up.
 */
export interface ClusterSettings {
  readonly channel: string;
  readonly notify: boolean;
}

type Queryable = Pick<pg.Pool | pg.Client, 'query'>;

/** Writes the settings given; the others keep their value. */
export async function writeSettings(db: Queryable, s: Partial<ClusterSettings>): Promise<void> {
  await db.query('UPDATE pgfeed.settings SET channel = coalesce($1, channel), notify = coalesce($2, notify)', [s.channel ?? null, s.notify ?? null]);
}

export async function readSettings(db: Queryable): Promise<ClusterSettings> {
  const { rows } = await db.query<ClusterSettings>('SELECT channel, notify FROM pgfeed.settings');
  return rows[0];
}

/** Refuses a daemon configured otherwise than the database: it would miss every NOTIFY, or poll while the writers still pay for one. */
export async function checkSettings(db: Queryable, want: ClusterSettings): Promise<void> {
  const have = await readSettings(db);
  if (have.channel === want.channel && have.notify === want.notify) return;
  throw new PgfeedError(
    'settings_mismatch',
    `pgfeed.settings has channel ${have.channel} and notify ${have.notify}, but this daemon is configured with channel ${want.channel} and notify ${want.notify}; ` +
      `to change them for every replica run pgfeed migrate --channel ${want.channel} --notify ${want.notify}, ` +
      // The notify a daemon wants follows its wake mode: name the mode.
      `or start this daemon with --channel ${have.channel} --wake ${have.notify ? 'notify' : 'poll'} (PGFEED_CHANNEL, PGFEED_WAKE; PGFEED_NOTIFY follows it)`,
  );
}
