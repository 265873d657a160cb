import { PgfeedError } from '../errors.js';
import type { Cursor, Position } from '../interfaces.js';
import { positionAt, positionOf } from '../db/position-of.js';
import { namedQuery } from '../db/query-errors.js';
import type { ReadScope } from '../db/row-security.js';
import { START } from '../position.js';
import type { Metrics } from '../metrics.js';
import type { Tail } from './tail.js';

export class CursorError extends PgfeedError {
  constructor(
    code: 'unknown_cursor' | 'cursor_expired',
    readonly detail: Record<string, unknown>,
  ) {
    super(code);
  }
}

/** Resolves a public cursor to a position. Only a seq needs the database. */
export async function resolveCursor(cursor: Cursor, project: string, reads: ReadScope, tail: Tail, metrics: Metrics): Promise<Position> {
  if (cursor.kind === 'start') return START;
  // The last row the tail read, not its head: nothing lies between them, and a row is safe to keep.
  if (cursor.kind === 'now') return tail.lastRow;
  metrics.queries.inc({ kind: 'lookup' });
  if (cursor.kind === 'since') {
    // Taken before the lookup: a row that commits after it is after this too.
    const now = tail.lastRow;
    const at = await namedQuery(metrics, 'lookup', reads.project(project, (db) => positionAt(db, cursor.at, project)));
    if (at.kind === 'found') return at.pos;
    if (at.kind === 'none') return now;
    throw expired(at.earliest);
  }
  const found = await namedQuery(metrics, 'lookup', reads.project(project, (db) => positionOf(db, cursor.seq, project)));
  if (found.kind === 'found') return found.pos;
  if (found.kind === 'expired') throw expired(found.earliest);
  throw new CursorError('unknown_cursor', { seq: String(cursor.seq) });
}

function expired(earliest: number | null): CursorError {
  return new CursorError('cursor_expired', { earliest: earliest === null ? null : String(earliest) });
}
