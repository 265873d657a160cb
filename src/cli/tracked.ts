import { listTracked, publicRow, type TrackedTable } from '../db/tracked.js';
import { defineCommand } from './command.js';
import { withDatabase } from './database.js';

/** One line for a person: the table, its event types and where its project comes from. */
export function describeTracked(t: TrackedTable): string {
  const source = t.project_column !== null ? `project from column ${t.project_column}` : `project ${t.project} (every row)`;
  return `${t.table}: events ${t.type_prefix}.*, ${source}`;
}

export const trackedCommand = defineCommand(
  {
    name: 'tracked',
    summary: 'list the tracked tables and where their project comes from',
    settings: ['databaseUrl'],
    prints: true,
    examples: ['pgfeed tracked', 'pgfeed tracked --json'],
  },
  ({ config, print }) =>
    withDatabase('tracked', config.databaseUrl, async (db) => {
      const tables = (await listTracked(db)).map(publicRow);
      print(tables, () => (tables.length ? tables.map(describeTracked).join('\n') : 'no table is tracked; pgfeed track <table> --project-column C starts one'));
      return 0;
    }),
);
