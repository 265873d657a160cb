import pino from 'pino';

/**
 * JSON lines to stdout, which journald keeps under systemd; a one-shot
 * command logs to stderr (fd 2), since its stdout is its result.
 */
export function createLogger(level: string, fd: 1 | 2 = 1): pino.Logger {
  const options = { level, base: { service: 'pgfeed' } };
  return fd === 1 ? pino(options) : pino(options, pino.destination(2));
}

export type Logger = pino.Logger;
