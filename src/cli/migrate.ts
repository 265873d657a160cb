import { MIGRATE_SETTINGS, migrateOnly } from '../main.js';
import { defineCommand } from './command.js';
import { needDatabase } from './database.js';
import { describeWritten, settingsGiven } from './settings.js';

export const migrateCommand = defineCommand(
  {
    name: 'migrate',
    summary: 'apply pending migrations, write the channel and notify settings given, and exit',
    about:
      'Two migrators take turns under an advisory lock. A channel or notify given (as a flag or as PGFEED_CHANNEL, PGFEED_NOTIFY) is written to pgfeed.settings for every writer and replica; the other keeps its value. Running daemons keep what they started with: restart each one configured alike.',
    settings: MIGRATE_SETTINGS,
    prints: true,
    examples: ['pgfeed migrate --database-url postgres://pgfeed@db/app', 'DATABASE_URL=postgres://pgfeed@db/app pgfeed migrate --notify false', 'pgfeed migrate --json'],
  },
  async ({ config, given, print }) => {
    const written = settingsGiven(config, given);
    const applied = await migrateOnly(needDatabase('migrate', config.databaseUrl), config.logLevel, written, config.logFormat);
    print({ applied, written }, () =>
      [applied.length ? `applied ${applied.join(', ')}` : 'the database was up to date', ...describeWritten(written)].join('\n'),
    );
    return 0;
  },
);
