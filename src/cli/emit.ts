import { text } from 'node:stream/consumers';
import { defineCommand, usage } from './command.js';
import { needDatabase, withDatabase } from './database.js';

/** The event's data as JSON text, checked here so that a typo is a usage error rather than a database one; null when none is given. */
async function readData(arg: string | undefined): Promise<string | null> {
  if (arg === undefined) return null;
  const raw = arg === '-' ? await text(process.stdin) : arg;
  try {
    JSON.parse(raw);
  } catch (err) {
    throw usage(`the data${arg === '-' ? ' on stdin' : ''} is not valid JSON: ${(err as Error).message}`);
  }
  // The text itself is sent, not JSON.parse's value: jsonb keeps numbers beyond 2^53 exact.
  return raw;
}

export const emitCommand = defineCommand(
  {
    name: 'emit',
    summary: 'write one event of your own and print its seq',
    about:
      'The same as SELECT pgfeed.emit(project, type, data) in its own transaction. The data is a JSON value given as an argument, or read from stdin with -; without it the event\'s data is null.',
    args: ['project', 'type', 'data?'],
    settings: ['databaseUrl'],
    prints: true,
    examples: [
      'pgfeed emit acme deploy.finished \'{"version": "1.4.2"}\'',
      'jq -c . release.json | pgfeed emit acme release.published -',
      'pgfeed emit acme cache.flushed --json',
    ],
  },
  async ({ config, args: [project, type, data], print }) => {
    // Before stdin is read: a missing database is the first thing to say.
    needDatabase('emit', config.databaseUrl);
    const json = await readData(data);
    return withDatabase('emit', config.databaseUrl, async (db) => {
      const { rows } = await db.query<{ seq: string }>('SELECT pgfeed.emit($1, $2, $3::jsonb)::text AS seq', [project, type, json]);
      const seq = Number(rows[0].seq);
      print({ seq }, () => String(seq));
      return 0;
    });
  },
);
