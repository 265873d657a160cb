/**
 * `pgfeed tail`: follow one project's events from a running daemon, built on
 * pgfeed/client, so it reconnects and resumes by itself. With --cursor-file
 * the position of the last event printed is kept in a file, replaced
 * atomically after each event, so a tail started again continues exactly
 * after the last event the previous one printed.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { connect, FeedError, type ChangeEvent, type ConnectOptions, type StateChange } from '../client/index.js';
import { CLIENT_ENV } from '../config.js';
import { defineCommand, usage } from './command.js';

const DEFAULT_URL = 'http://127.0.0.1:8787';

/** The cursor a file holds; null when the file is missing or empty (a first run). */
function readCursor(file: string): string | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw usage(`cannot read the cursor file ${file}: ${(err as Error).message}`);
  }
  if (text === '') return null;
  if (!/^\d{1,16}$/.test(text)) throw usage(`the cursor file ${file} holds ${JSON.stringify(text.slice(0, 40))}, not the seq of an event; remove it to start again`);
  return text;
}

/**
 * Replaces the file in one rename, so that a tail killed mid-write leaves
 * the old cursor or the new one, never half of either.
 */
function writeCursor(file: string, seq: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${seq}\n`);
  renameSync(tmp, file);
}

/** ANSI colours for a terminal; none with NO_COLOR (no-color.org). */
function painter(on: boolean) {
  const paint = (code: string) => (s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { dim: paint('2'), type: paint('36'), insert: paint('32'), update: paint('33'), delete: paint('31'), warn: paint('33') };
}

/** One line for a person: time, seq, type, what happened to which table, and the data. */
function prettyLine(ev: ChangeEvent, c: ReturnType<typeof painter>): string {
  const op = ev.op === null ? '' : ` ${(c[ev.op as 'insert' | 'update' | 'delete'] ?? ((s: string) => s))(ev.op)}${ev.table ? ` ${ev.table}` : ''}`;
  return `${c.dim(`${ev.at.slice(11, 23)} #${ev.seq}`)} ${c.type(ev.type)}${op} ${JSON.stringify(ev.data)}`;
}

function describeState(s: StateChange): string | null {
  if (s.state === 'retrying') {
    const why = s.error ? `: ${s.error.message}` : ' (the stream ended)';
    return `reconnecting in ${((s.delayMs ?? 0) / 1000).toFixed(1)} s${why}`;
  }
  if (s.state === 'open') return 'connected';
  return null;
}

export const tailCommand = defineCommand(
  {
    name: 'tail',
    summary: "follow a project's events from a running daemon",
    about:
      'It reconnects by itself and resumes after the last event it received. On a terminal each event is a coloured line; otherwise one JSON object a line (for jq). With --cursor-file it keeps the position of the last event printed in that file, and a tail started again with it continues exactly after that event (the file wins over --after and --since). Stops on SIGINT or SIGTERM; exit 1 when the daemon refuses the stream for good (a pruned cursor, a refused token), 2 for bad arguments.',
    settings: [],
    flags: {
      url: { value: 'URL', doc: `the daemon or its load balancer (default ${CLIENT_ENV.url}, else ${DEFAULT_URL})` },
      project: { value: 'P', doc: 'the project to follow (required)' },
      after: { value: 'SEQ', doc: "start after this event: 0 (the default, all retained history), 'now', or a seq" },
      since: { value: 'TIME', doc: 'start at the first transaction that began at or after this RFC 3339 time' },
      types: { value: 'T', doc: 'type names or prefix globs, comma-separated (orders.*,pr_opened)' },
      token: { value: 'TOKEN', doc: `a bearer token (default ${CLIENT_ENV.token})` },
      'cursor-file': { value: 'FILE', doc: 'keep the cursor in FILE, and start from it when it holds one' },
      json: { doc: 'JSON lines even on a terminal' },
    },
    prints: false,
    examples: [
      'pgfeed tail --project acme',
      "pgfeed tail --project acme --types 'orders.*' --after now",
      "pgfeed tail --project acme --cursor-file acme.cursor | jq -c 'select(.op == \"delete\")'",
      'PGFEED_URL=https://feed.example.com PGFEED_TOKEN=… pgfeed tail --project acme --since 2026-12-01T09:00:00Z',
    ],
  },
  async ({ flags }) => {
    const str = (v: string | true | undefined) => (typeof v === 'string' ? v : undefined);
    const project = str(flags.project);
    if (project === undefined || project === '') throw usage('pgfeed tail needs --project P; see pgfeed tail --help');
    const cursorFile = str(flags['cursor-file']);
    const saved = cursorFile === undefined ? null : readCursor(cursorFile);
    const url = str(flags.url) ?? process.env[CLIENT_ENV.url] ?? DEFAULT_URL;
    const token = str(flags.token) ?? (process.env[CLIENT_ENV.token] || undefined);
    const options: ConnectOptions = {
      url,
      project,
      ...(saved !== null ? { after: saved } : { after: str(flags.after), since: str(flags.since) }),
      types: str(flags.types),
      token,
    };
    let feed;
    try {
      feed = connect(options);
    } catch (err) {
      // The client checks the options, in its own words.
      if (err instanceof FeedError && err.code === 'invalid_option') throw usage(`pgfeed tail: ${err.message}; see pgfeed tail --help`);
      throw err;
    }
    const pretty = process.stdout.isTTY === true && flags.json !== true;
    const c = painter(pretty && !process.env.NO_COLOR);
    const note = (line: string) => process.stderr.write(`${c.dim(`pgfeed tail: ${line}`)}\n`);
    feed.on('state', (s) => {
      const line = describeState(s);
      if (line !== null) note(line);
    });
    for (const name of ['degraded', 'ok', 'expiring'] as const) feed.on(name, (v) => note(`${v.type} ${JSON.stringify(v)}`));
    const stop = () => feed.close();
    process.once('SIGINT', stop).once('SIGTERM', stop);
    // `pgfeed tail | head`: a reader that went away is the end, not a failure.
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') stop();
    });
    try {
      for await (const ev of feed) {
        process.stdout.write(`${pretty ? prettyLine(ev, c) : JSON.stringify(ev)}\n`);
        // After the line is out: a tail stopped between the two prints it again, never skips it.
        if (cursorFile !== undefined) writeCursor(cursorFile, feed.position!);
      }
    } catch (err) {
      // The server refused the request itself (a bad --types): the command line is at fault.
      if (err instanceof FeedError && err.status === 400) throw usage(err.message);
      if (err instanceof FeedError && err.code === 'cursor_expired') {
        const fix = cursorFile !== undefined && saved !== null ? `remove ${cursorFile}` : 'start with --after 0';
        throw new Error(`${err.message} Retained history now begins at seq ${String(err.detail.earliest ?? 'none')}: to go on from there, ${fix}.`, { cause: err });
      }
      throw err;
    } finally {
      process.off('SIGINT', stop).off('SIGTERM', stop);
    }
    return 0;
  },
);
