import { SETTINGS, type SettingKey } from '../config.js';
import { serve } from '../main.js';
import { defineCommand } from './command.js';

export const serveCommand = defineCommand(
  {
    name: 'serve',
    summary: 'migrate (unless --migrate false), then stream changes over HTTP (the default)',
    about:
      'Without DATABASE_URL it runs an embedded Postgres (data in PGFEED_DATA_DIR). It logs JSON lines on stdout and runs until SIGTERM or SIGINT, then shuts down gracefully.',
    settings: Object.keys(SETTINGS) as SettingKey[],
    prints: false,
    examples: ['pgfeed serve --demo', 'DATABASE_URL=postgres://pgfeed@db/app pgfeed serve --port 9000', 'pgfeed --port 9000   (no command: serve)'],
  },
  ({ config }) => serve(config),
);
