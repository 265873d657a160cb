import pino from 'pino';
import pretty from 'pino-pretty';

/** `auto`: pretty on a terminal, JSON lines otherwise (a pipe, a file, journald). */
export type LogFormat = 'auto' | 'json' | 'pretty';

/**
 * JSON lines to stdout, which journald keeps under systemd; on a terminal,
 * one human-readable line per event instead. A one-shot command logs to
 * stderr (fd 2), since its stdout is its result. The logger's lines are notable
 * events (start-up, a lost connection, a held horizon), never one per
 * delivered change, so neither format grows with the traffic.
 */
/** The query parameters that carry credentials (src/auth/credentials.ts). */
const SECRET_PARAMS = /([?&]|^)(ticket|access_token)=[^&#\s]*/g;

/** A URL or query string with every credential parameter's value replaced. */
export function redactQuery(value: unknown): unknown {
  return typeof value === 'string' ? value.replace(SECRET_PARAMS, '$1$2=[Redacted]') : value;
}

/**
 * Tokens and tickets never reach a log line: the fields that could hold
 * one are censored wherever they appear, and a query string or URL keeps
 * its shape with the credential parameters' values replaced.
 */
const REDACT = {
  paths: ['token', 'ticket', 'authorization', 'cookie', 'access_token', '*.token', '*.ticket', '*.authorization', '*.cookie', '*.access_token', 'headers.authorization', 'headers.cookie', 'req.headers.authorization', 'req.headers.cookie'],
  censor: '[Redacted]',
};
const SERIALIZERS = { query: redactQuery, url: redactQuery };

export function createLogger(level: string, format: LogFormat = 'auto', fd: 1 | 2 = 1): pino.Logger {
  const options = { level, base: { service: 'pgfeed' }, redact: REDACT, serializers: SERIALIZERS };
  const human = format === 'pretty' || (format === 'auto' && (fd === 1 ? process.stdout : process.stderr).isTTY === true);
  // Synchronous writes: serve ends with process.exit() right after its last
  // line, and an asynchronous destination may still have an earlier line
  // (say 'shutting down') in flight then, which exit would drop or put after
  // the last. The lines are few (notable events), so a blocking write costs
  // nothing that matters.
  if (!human) return pino(options, pino.destination({ fd, sync: true }));
  // pino-pretty as a synchronous stream in this thread rather than as a
  // worker-thread transport: serve ends with process.exit() right after its
  // last line ('stopped', or a fatal error), which a transport's worker may
  // not have written yet. A terminal reads few lines, so speed is no concern.
  // An `err` goes on indented lines below its event, as pino-pretty always
  // prints it; everything else stays on the event's line.
  return pino(
    options,
    pretty({ sync: true, destination: fd, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'service' }),
  );
}

export type Logger = pino.Logger;
