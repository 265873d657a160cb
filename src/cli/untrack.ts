import { untrack } from '../db/tracked.js';
import { defineCommand } from './command.js';
import { withDatabase } from './database.js';

export const untrackCommand = defineCommand(
  {
    name: 'untrack',
    summary: 'stop capturing a table (its events already written stay in the log)',
    about: 'It is safe on a table that is not tracked.',
    args: ['table'],
    settings: ['databaseUrl'],
    prints: true,
    examples: ['pgfeed untrack orders', 'pgfeed untrack billing.invoices --json'],
  },
  ({ config, args: [table], print }) =>
    withDatabase('untrack', config.databaseUrl, async (db) => {
      const was = await untrack(db, table);
      print({ table: was?.table ?? table, was_tracked: was !== null }, () => (was ? `untracked ${was.table}` : `${table} was not tracked; nothing changed`));
      return 0;
    }),
);
