import pino from 'pino';
import pretty from 'pino-pretty';

/** `auto`: pretty on a terminal, JSON lines otherwise (a pipe, a file, journald). */
export type LogFormat = 'auto' | 'json' | 'pretty';

/**
 * JSON lines to stdout, which journald keeps under systemd; on a terminal,
 * one human-readable line per event instead. The logger's lines are notable
 * events (start-up, a lost connection, a held horizon), never one per
 * delivered change, so neither format grows with the traffic.
 */
export function createLogger(level: string, format: LogFormat = 'auto'): pino.Logger {
  const options = { level, base: { service: 'pgfeed' } };
  const human = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
  if (!human) return pino(options);
  // pino-pretty as a synchronous stream in this thread rather than as a
  // worker-thread transport: serve ends with process.exit() right after its
  // last line ('stopped', or a fatal error), which a transport's worker may
  // not have written yet. A terminal reads few lines, so speed is no concern.
  // An `err` goes on indented lines below its event, as pino-pretty always
  // prints it; everything else stays on the event's line.
  return pino(
    options,
    pretty({ sync: true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'service' }),
  );
}

export type Logger = pino.Logger;
