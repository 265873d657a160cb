import { loadCommandLine, settingsHelp, type CommandFlag, type CommandLine, type SettingKey } from '../config.js';
import { PgfeedError } from '../errors.js';

/** What one command is: its usage, and what `pgfeed <name> --help` says about it. */
export interface CommandSpec<K extends SettingKey, F extends string> {
  readonly name: string;
  /** One line, for the list of commands. */
  readonly summary: string;
  /** Its arguments in order; a name ending in `?` is optional (`data?`). */
  readonly args?: readonly string[];
  /** What the usage line shows after the arguments, for flags that go together: `(--project-column C | --project P)`. */
  readonly synopsis?: string;
  /** The settings it takes as flags (and reads from the env). */
  readonly settings: readonly K[];
  readonly flags?: Readonly<Record<F, CommandFlag>>;
  /** Whether it prints a result, and so takes --json; serve logs instead. */
  readonly prints: boolean;
  /** A few sentences after the summary. */
  readonly about?: string;
  readonly examples: readonly string[];
}

/** The command line a command runs with, checked against its spec. */
export interface Invocation<K extends SettingKey, F extends string> extends CommandLine<K, F> {
  /** The arguments, as many as the spec names (the optional ones may be missing). */
  readonly args: readonly string[];
  readonly json: boolean;
  /** Writes the result: `doc` as one JSON document with --json, the lines of `human` otherwise. */
  print(doc: unknown, human: () => string): void;
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly help: string;
  /** Resolves to the exit status once the command is done, or to nothing for one that keeps running (serve). */
  run(argv: readonly string[]): Promise<number | void>;
}

const JSON_FLAG: CommandFlag = { doc: 'print the result as one JSON document on stdout' };

/** Usage errors exit 2, like a bad setting. */
export const usage = (message: string) => new PgfeedError('invalid_config', message);

export function defineCommand<K extends SettingKey, F extends string = never>(
  spec: CommandSpec<K, F>,
  run: (inv: Invocation<K, F | 'json'>) => Promise<number | void>,
): Command {
  const flags = { ...spec.flags, ...(spec.prints ? { json: JSON_FLAG } : {}) } as Record<F | 'json', CommandFlag>;
  const helpRef = `pgfeed ${spec.name} --help`;
  return {
    name: spec.name,
    summary: spec.summary,
    help: helpText(spec, flags),
    run(argv) {
      const line = loadCommandLine(argv, process.env, spec.settings, flags, helpRef);
      const names = spec.args ?? [];
      const required = names.filter((a) => !a.endsWith('?')).length;
      if (line.positionals.length < required) {
        throw usage(`pgfeed ${spec.name} needs <${names[line.positionals.length]}>; see ${helpRef}`);
      }
      if (line.positionals.length > names.length) {
        throw usage(`unexpected argument ${JSON.stringify(line.positionals[names.length].slice(0, 80))}; see ${helpRef}`);
      }
      const json = line.flags.json === true;
      const print = (doc: unknown, human: () => string) => void process.stdout.write(`${json ? JSON.stringify(doc) : human()}\n`);
      return run({ ...line, args: line.positionals, json, print });
    },
  };
}

/** Words on lines of at most `width` characters. */
function wrap(text: string, width = 78): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line].join('\n');
}

function helpText<K extends SettingKey, F extends string>(spec: CommandSpec<K, F>, flags: Readonly<Record<string, CommandFlag>>): string {
  const args = (spec.args ?? []).map((a) => (a.endsWith('?') ? `[${a.slice(0, -1)}]` : `<${a}>`));
  const line = ['usage: pgfeed', spec.name, ...args, spec.synopsis, '[options]'].filter(Boolean).join(' ');
  const own = Object.entries(flags).map(([name, f]) => `  ${`--${name}${f.value ? ` ${f.value}` : ''}`.padEnd(62)} ${f.doc}`);
  return [
    line,
    '',
    wrap(`${spec.summary[0].toUpperCase()}${spec.summary.slice(1)}.${spec.about ? ` ${spec.about}` : ''}`),
    ...(own.length ? ['', 'options:', ...own] : []),
    ...(spec.settings.length ? ['', 'settings (each also an environment variable; a flag wins):', settingsHelp(spec.settings)] : []),
    '',
    'examples:',
    ...spec.examples.map((e) => `  ${e}`),
    '',
  ].join('\n');
}
