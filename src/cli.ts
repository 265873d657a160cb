#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { loadConfig, settingsHelp, SETTINGS, type SettingKey } from './config.js';
import { PgfeedError } from './errors.js';
import { MIGRATE_SETTINGS, migrateOnly, serve } from './main.js';

interface Command {
  readonly summary: string;
  /** The settings it takes as flags (and reads from the env). */
  readonly settings: readonly SettingKey[];
  run(argv: readonly string[]): Promise<void>;
}

const COMMANDS: Record<string, Command> = {
  serve: {
    summary: 'migrate, then stream changes over HTTP (the default)',
    settings: Object.keys(SETTINGS) as SettingKey[],
    run: (argv) => serve(loadConfig(argv).config),
  },
  migrate: {
    summary: 'apply pending migrations, write the channel and notify settings given, and exit',
    settings: MIGRATE_SETTINGS,
    async run(argv) {
      await migrateOnly(loadConfig(argv, process.env, MIGRATE_SETTINGS));
      process.exit(0);
    },
  },
};

/** Exit 2: the configuration is at fault, and starting again with it cannot help. */
const CONFIG_ERRORS = new Set<string>(['invalid_config', 'settings_mismatch']);

function commandHelp(name: string): string {
  return `usage: pgfeed ${name} [options]

${COMMANDS[name].summary}

options (each also an environment variable; a flag wins):
${settingsHelp(COMMANDS[name].settings)}
`;
}

const USAGE = `usage: pgfeed <command> [options]

commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(9)} ${c.summary}`).join('\n')}

pgfeed <command> --help lists a command's options. Those of serve:
${settingsHelp(COMMANDS.serve.settings)}
`;

async function run(argv: string[]): Promise<void> {
  // No command and a flag: `pgfeed --port 9000` serves.
  const [name = 'serve', ...rest] = argv[0]?.startsWith('--') && argv[0] !== '--help' && argv[0] !== '--version' ? ['serve', ...argv] : argv;
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command) {
    // `pgfeed serve --help` asks for help, not for an option named --help.
    if (rest.includes('--help') || rest.includes('-h')) return void process.stdout.write(commandHelp(name));
    return command.run(rest);
  }
  switch (name) {
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(rest[0] && Object.hasOwn(COMMANDS, rest[0]) ? commandHelp(rest[0]) : USAGE);
      return;
    case 'version':
    case '--version': {
      const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
      process.stdout.write(pkg.version + '\n');
      return;
    }
    default:
      throw new PgfeedError('invalid_config', `unknown command ${JSON.stringify(name)}; try pgfeed --help`);
  }
}

run(process.argv.slice(2)).catch((err: unknown) => {
  // One line, naming what to fix; the details only with a debug level.
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`pgfeed: ${msg.split('\n')[0]}\n`);
  if (process.env.PGFEED_LOG_LEVEL === 'debug' && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.exit(err instanceof PgfeedError && CONFIG_ERRORS.has(err.code) ? 2 : 1);
});
