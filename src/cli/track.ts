import { track, type ProjectSource } from '../db/tracked.js';
import { defineCommand, usage } from './command.js';
import { withDatabase } from './database.js';
import { describeTracked } from './tracked.js';

export const trackCommand = defineCommand(
  {
    name: 'track',
    summary: 'capture every insert, update, delete and truncate of a table',
    about:
      'Each row\'s project comes from a column (--project-column), or every row belongs to one project (--project): give exactly one. Tracking a table again replaces its triggers. Its events are named <table>.<op> (docs/sql.md).',
    args: ['table'],
    synopsis: '(--project-column C | --project P)',
    flags: {
      'project-column': { value: 'C', doc: "the column holding each row's project" },
      project: { value: 'P', doc: 'the one project of every row' },
    },
    settings: ['databaseUrl'],
    prints: true,
    examples: ['pgfeed track orders --project-column tenant', 'pgfeed track billing.invoices --project acme', 'pgfeed track \'sales."Order Lines"\' --project-column account_id --json'],
  },
  ({ config, args: [table], flags, print }) => {
    const column = flags['project-column'];
    const project = flags.project;
    if ((column === undefined) === (project === undefined)) throw usage('give exactly one of --project-column C or --project P; see pgfeed track --help');
    const source: ProjectSource = typeof column === 'string' ? { column } : { project: String(project) };
    if (Object.values(source)[0] === '') throw usage(`${'column' in source ? '--project-column' : '--project'} must not be empty`);
    return withDatabase('track', config.databaseUrl, async (db) => {
      const tracked = await track(db, table, source);
      print(tracked, () => `tracking ${describeTracked(tracked)}`);
      return 0;
    });
  },
);
