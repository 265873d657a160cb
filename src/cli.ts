#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { settingsHelp } from './config.js';
import { PgfeedError } from './errors.js';
import { migrateOnly, serve } from './main.js';

const USAGE = `usage: pgfeed <command> [options]

commands:
  serve     migrate, then stream changes over HTTP (the default)
  migrate   apply pending migrations to DATABASE_URL and exit

options (each also an environment variable; a flag wins):
${settingsHelp()}
`;

async function run(argv: string[]): Promise<void> {
  const [cmd = 'serve', ...rest] = argv;
  // `pgfeed serve --help` asks for help, not for an option named --help.
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(USAGE);
    return;
  }
  switch (cmd) {
    case 'serve':
      return serve(rest);
    case 'migrate':
      await migrateOnly(rest);
      process.exit(0);
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    case 'version':
    case '--version': {
      const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
      process.stdout.write(pkg.version + '\n');
      return;
    }
    default:
      if (cmd.startsWith('--')) return serve(argv);
      throw new PgfeedError('invalid_config', `unknown command ${JSON.stringify(cmd)}; try pgfeed --help`);
  }
}

run(process.argv.slice(2)).catch((err: unknown) => {
  // One line, naming what to fix; the details only with a debug level.
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`pgfeed: ${msg.split('\n')[0]}\n`);
  if (process.env.PGFEED_LOG_LEVEL === 'debug' && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.exit(err instanceof PgfeedError && err.code === 'invalid_config' ? 2 : 1);
});
