import { PgfeedError } from '../errors.js';
import type { Cursor, Filter } from '../interfaces.js';
import { isValidTypePattern, MAX_TYPE_PATTERNS } from '../feed/type-filter.js';
import type { EventNames } from '../protocol.js';

/** What every /v1 request names: a filter and a cursor. */
export interface StreamParams {
  readonly filter: Filter;
  readonly cursor: Cursor;
}

export interface EventsParams extends StreamParams {
  /** Name each event by its type (`event_names=on`, the default). */
  readonly eventNames: boolean;
}

export interface PollParams extends StreamParams {
  readonly limit: number;
  readonly waitMs: number;
}

/** Parses a query string, refusing unknown and repeated parameters. */
function parseQuery(query: string, allowed: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of new URLSearchParams(query)) {
    if (!allowed.includes(k)) {
      throw new PgfeedError('unknown_parameter', `Unknown parameter ${JSON.stringify(k.slice(0, 40))}; this endpoint takes ${allowed.join(', ')}.`);
    }
    if (out.has(k)) throw new PgfeedError('duplicate_parameter', `The parameter ${k} is given more than once; give it once.`);
    out.set(k, v);
  }
  return out;
}

function parseProject(raw: string | undefined): string {
  if (raw === undefined || raw === '') throw new PgfeedError('missing_project');
  if (raw.length > 200 || /[\x00-\x1f\x7f]/.test(raw)) throw new PgfeedError('invalid_project');
  return raw;
}

const SEQ = /^\d{1,16}$/;

function parseSeq(raw: string): number | null {
  if (!SEQ.test(raw)) return null;
  const n = Number(raw);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * `lastEventId` is the header's value, undefined when it is absent. Present
 * but empty is refused: an EventSource leaves the header out rather than
 * send it empty, and uWebSockets.js trims bytes 0x80-0xFF off both ends of
 * a header value as if they were spaces, so `Last-Event-ID: \xff` arrives
 * empty (see docs/http-hardening.md).
 */
export function parseCursor(after: string | undefined, lastEventId: string | undefined): Cursor {
  // EventSource reconnects to the same URL, after= and all, and adds the
  // header: honouring after= then would replay from the start every time.
  if (lastEventId !== undefined) {
    const seq = parseSeq(lastEventId.trim());
    if (seq === null) throw new PgfeedError('invalid_last_event_id');
    return seq === 0 ? { kind: 'start' } : { kind: 'seq', seq };
  }
  if (after === undefined || after === '0') return { kind: 'start' };
  if (after === 'now') return { kind: 'now' };
  const seq = parseSeq(after);
  if (seq === null) throw new PgfeedError('invalid_after');
  return seq === 0 ? { kind: 'start' } : { kind: 'seq', seq };
}

function parseTypes(raw: string | undefined): string[] {
  if (raw === undefined) return [];
  const parts = raw.split(',');
  if (parts.length > MAX_TYPE_PATTERNS || parts.some((p) => !isValidTypePattern(p))) throw new PgfeedError('invalid_types');
  const types = [...new Set(parts)].sort();
  return types.includes('*') ? [] : types;
}

function parseIntIn(raw: string | undefined, min: number, max: number, dflt: number, code: 'invalid_limit' | 'invalid_wait'): number {
  if (raw === undefined) return dflt;
  if (!/^\d{1,4}$/.test(raw)) throw new PgfeedError(code);
  const n = Number(raw);
  if (n < min || n > max) throw new PgfeedError(code);
  return n;
}

const EVENT_NAMES: readonly EventNames[] = ['on', 'off'];

function parseEventNames(raw: string | undefined): boolean {
  if (raw === undefined) return true;
  if (!(EVENT_NAMES as readonly string[]).includes(raw)) throw new PgfeedError('invalid_event_names');
  return raw === 'on';
}

export function parseStreamParams(query: string, lastEventId: string | undefined): EventsParams {
  const q = parseQuery(query, ['project', 'after', 'types', 'event_names']);
  return {
    filter: { project: parseProject(q.get('project')), types: parseTypes(q.get('types')) },
    cursor: parseCursor(q.get('after'), lastEventId),
    eventNames: parseEventNames(q.get('event_names')),
  };
}

export function parsePollParams(query: string): PollParams {
  const q = parseQuery(query, ['project', 'after', 'types', 'limit', 'wait']);
  return {
    filter: { project: parseProject(q.get('project')), types: parseTypes(q.get('types')) },
    cursor: parseCursor(q.get('after'), undefined),
    limit: parseIntIn(q.get('limit'), 1, 512, 512, 'invalid_limit'),
    waitMs: parseIntIn(q.get('wait'), 0, 30, 0, 'invalid_wait') * 1000,
  };
}
