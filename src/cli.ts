#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { settingsHelp, SETTINGS, type SettingKey } from './config.js';
import { PgfeedError } from './errors.js';
import type { Command } from './cli/command.js';
import { doctorCommand } from './cli/doctor.js';
import { emitCommand } from './cli/emit.js';
import { migrateCommand } from './cli/migrate.js';
import { revokeCommand } from './cli/revoke.js';
import { serveCommand } from './cli/serve.js';
import { settingsCommand } from './cli/settings.js';
import { tailCommand } from './cli/tail.js';
import { trackCommand } from './cli/track.js';
import { trackedCommand } from './cli/tracked.js';
import { untrackCommand } from './cli/untrack.js';

const COMMANDS: ReadonlyMap<string, Command> = new Map(
  [serveCommand, migrateCommand, trackCommand, untrackCommand, trackedCommand, emitCommand, settingsCommand, doctorCommand, tailCommand, revokeCommand].map((c) => [c.name, c]),
);

/** Exit 2: the command line or configuration is at fault, and running again with it cannot help. */
const USAGE_ERRORS = new Set<string>(['invalid_config', 'settings_mismatch', 'row_security_mismatch']);

const USAGE = `usage: pgfeed <command> [options]

commands:
${[...COMMANDS.values()].map((c) => `  ${c.name.padEnd(9)} ${c.summary}`).join('\n')}

examples:
  pgfeed serve --demo
  pgfeed track orders --project-column tenant
  pgfeed doctor
  pgfeed tail --project acme

Each command but serve takes --json (one JSON document on stdout; JSON lines
for tail) and, but tail, needs DATABASE_URL; only serve starts an embedded
Postgres without it. tail reads a running daemon (PGFEED_URL). Exit status:
0 done, 1 failed, 2 a usage or configuration error.

pgfeed <command> --help shows a command's usage, options and examples. Those of serve:
${settingsHelp(Object.keys(SETTINGS) as SettingKey[])}
`;

async function run(argv: string[]): Promise<number | void> {
  // No command and a flag: `pgfeed --port 9000` serves.
  const [name = 'serve', ...rest] = argv[0]?.startsWith('--') && argv[0] !== '--help' && argv[0] !== '--version' ? ['serve', ...argv] : argv;
  const command = COMMANDS.get(name);
  if (command) {
    // `pgfeed serve --help` asks for help, not for an option named --help.
    if (rest.includes('--help') || rest.includes('-h')) return void process.stdout.write(command.help);
    return command.run(rest);
  }
  switch (name) {
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(COMMANDS.get(rest[0])?.help ?? USAGE);
      return 0;
    case 'version':
    case '--version': {
      const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
      process.stdout.write(pkg.version + '\n');
      return 0;
    }
    default:
      throw new PgfeedError('invalid_config', `unknown command ${JSON.stringify(name)}; try pgfeed --help`);
  }
}

/** The error in one line: its first, and the HINT Postgres gave with it (pgfeed.track's name the fix). */
function oneLine(err: unknown): string {
  const message = (err instanceof Error ? err.message : String(err)).split('\n')[0];
  const hint = (err as { hint?: unknown }).hint;
  return typeof hint === 'string' && hint ? `${message} (hint: ${hint.split('\n')[0]})` : message;
}

run(process.argv.slice(2)).then(
  // A command that is done leaves its exit status; serve keeps running and sets none.
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (err: unknown) => {
    // One line, naming what to fix; the details only with a debug level.
    process.stderr.write(`pgfeed: ${oneLine(err)}\n`);
    if (process.env.PGFEED_LOG_LEVEL === 'debug' && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exit(err instanceof PgfeedError && USAGE_ERRORS.has(err.code) ? 2 : 1);
  },
);
