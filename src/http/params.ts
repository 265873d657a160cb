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

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|([+-])(\d{2}):(\d{2}))$/;

/** An RFC 3339 date-time with its offset, every field in range (2026-02-30 is refused, not rolled over). */
export function parseSince(raw: string): string {
  const m = RFC3339.exec(raw);
  if (!m) throw new PgfeedError('invalid_since');
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number);
  const days = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  const offsetOk = m[9] === undefined || (Number(m[10]) <= 23 && Number(m[11]) <= 59);
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days || h > 23 || mi > 59 || s > 59 || !offsetOk) throw new PgfeedError('invalid_since');
  return raw;
}

/**
 * `lastEventId` is the header's value, undefined when it is absent. Present
 * but empty is refused: an EventSource leaves the header out rather than
 * send it empty, and uWebSockets.js trims bytes 0x80-0xFF off both ends of
 * a header value as if they were spaces, so `Last-Event-ID: \xff` arrives
 * empty (see docs/http-hardening.md).
 */
export function parseCursor(after: string | undefined, lastEventId: string | undefined, since?: string): Cursor {
  // EventSource reconnects to the same URL, after= and all, and adds the
  // header: honouring after= then would replay from the start every time.
  // since= likewise: it says where a fresh stream starts, and a reconnect
  // resumes from its Last-Event-ID instead.
  if (lastEventId !== undefined) {
    const seq = parseSeq(lastEventId.trim());
    if (seq === null) throw new PgfeedError('invalid_last_event_id');
    return seq === 0 ? { kind: 'start' } : { kind: 'seq', seq };
  }
  if (since !== undefined) {
    // Two starting points: refuse rather than pick one.
    if (after !== undefined) throw new PgfeedError('conflicting_cursors');
    return { kind: 'since', at: parseSince(since) };
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
  const q = parseQuery(query, ['project', 'after', 'since', 'types', 'event_names']);
  return {
    filter: { project: parseProject(q.get('project')), types: parseTypes(q.get('types')) },
    cursor: parseCursor(q.get('after'), lastEventId, q.get('since')),
    eventNames: parseEventNames(q.get('event_names')),
  };
}

export function parsePollParams(query: string): PollParams {
  const q = parseQuery(query, ['project', 'after', 'since', 'types', 'limit', 'wait']);
  return {
    filter: { project: parseProject(q.get('project')), types: parseTypes(q.get('types')) },
    cursor: parseCursor(q.get('after'), undefined, q.get('since')),
    limit: parseIntIn(q.get('limit'), 1, 512, 512, 'invalid_limit'),
    waitMs: parseIntIn(q.get('wait'), 0, 30, 0, 'invalid_wait') * 1000,
  };
}
