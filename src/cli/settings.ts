import type { Config } from '../config.js';
import { readSettings, writeSettings, type ClusterSettings } from '../db/settings.js';
import { defineCommand } from './command.js';
import { withDatabase } from './database.js';

/** The cluster-wide settings among `which` (those given), to write to pgfeed.settings; the others keep their value. */
export function settingsGiven(config: Pick<Config, 'channel' | 'notify'>, which: ReadonlySet<string>): Partial<ClusterSettings> {
  return {
    ...(which.has('channel') ? { channel: config.channel } : {}),
    ...(which.has('notify') ? { notify: config.notify } : {}),
  };
}

/** What a person is told after a write: running daemons keep what they started with. */
export function describeWritten(written: Partial<ClusterSettings>): string[] {
  const pairs = Object.entries(written).map(([k, v]) => `${k} ${v}`);
  if (!pairs.length) return [];
  const env = Object.entries(written).map(([k, v]) => `PGFEED_${k.toUpperCase()}=${v}`);
  return [`wrote ${pairs.join(', ')} to pgfeed.settings`, `restart every replica with ${env.join(' ')}: a running daemon keeps what it started with`];
}

export const settingsCommand = defineCommand(
  {
    name: 'settings',
    summary: 'show the cluster-wide settings (channel, notify), or set them',
    about:
      'They are one row of pgfeed.settings, read by every writer\'s trigger and checked by every serve at start-up. Only the flags --channel and --notify write them (PGFEED_CHANNEL and PGFEED_NOTIFY in the environment do not, so that showing never writes); the same write as pgfeed migrate --channel/--notify.',
    settings: ['databaseUrl', 'channel', 'notify'],
    prints: true,
    examples: ['pgfeed settings', 'pgfeed settings --channel orders_feed --notify false', 'pgfeed settings --json'],
  },
  ({ config, flagged, print }) =>
    withDatabase('settings', config.databaseUrl, async (db) => {
      const written = settingsGiven(config, flagged);
      if (Object.keys(written).length) await writeSettings(db, written);
      const now = await readSettings(db);
      print(now, () => [`channel ${now.channel}`, `notify  ${now.notify}`, ...describeWritten(written)].join('\n'));
      return 0;
    }),
);
