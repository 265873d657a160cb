import type { Metrics } from '../metrics.js';

/**
 * Telling "the database is not reachable" from "the query is wrong". The
 * first passes: a client retries, a start-up waits. The second does not
 * (a missing privilege, a dropped column, a bad plan), and retrying it
 * forever would hide it, so it is answered as an internal error and logged
 * loudly with its SQLSTATE and the name of the query that failed.
 */

/** Socket errors of a connection that could not be made or was lost. */
const SOCKET = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH']);

/** SQLSTATEs outside classes 08 and 57P that also mean "not now". */
const NOT_NOW = new Set([
  '53300', // too_many_connections
]);

/** pg's messages for a socket closed without an ErrorResponse (an immediate
 *  shutdown, a crash) and for a client left broken by one: no SQLSTATE. */
const LOST = new Set(['Connection terminated unexpectedly', 'Client has encountered a connection error and is not queryable']);

function unreachableHere(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (SOCKET.has(code) || NOT_NOW.has(code)) return true;
    // 08: connection exception; 57P: the server is shutting down, starting, or crashed.
    if (/^(08|57P)[0-9A-Z]{2,3}$/.test(code)) return true;
  }
  return e instanceof Error && (LOST.has(e.message) || e.message.startsWith('timeout exceeded when trying to connect'));
}

/** Whether `err`, or an error it wraps, says the database is not (or no longer) reachable. */
export function isUnreachable(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e; depth++) {
    if (unreachableHere(e)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** What an error says about itself for the log: the query that failed and its SQLSTATE. */
export function queryFailure(err: unknown): { query: string | null; sqlstate: string | null; err: string } {
  const e = err as { query?: unknown; code?: unknown; message?: unknown };
  return {
    query: typeof e?.query === 'string' ? e.query : null,
    sqlstate: typeof e?.code === 'string' ? e.code : null,
    err: String(e?.message ?? err),
  };
}

/** Names the query a failure came from, for queryFailure(), and counts the failure by cause. */
export async function namedQuery<T>(metrics: Metrics, name: string, run: Promise<T>): Promise<T> {
  try {
    return await run;
  } catch (err) {
    if (err && typeof err === 'object' && !('query' in err)) Object.assign(err, { query: name });
    metrics.queryFailures.inc({ query: name, cause: isUnreachable(err) ? 'unreachable' : 'other' });
    throw err;
  }
}
