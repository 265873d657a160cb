import pino from 'pino';

/** JSON lines to stdout, which journald keeps under systemd. */
export function createLogger(level: string): pino.Logger {
  return pino({ level, base: { service: 'pgfeed' } });
}

export type Logger = pino.Logger;
