import type { Position } from './interfaces.js';

export const START: Position = Object.freeze({ xid: 0, seq: 0 });

export function comparePositions(a: Position, b: Position): number {
  return a.xid - b.xid || a.seq - b.seq;
}

export function isAfter(a: Position, b: Position): boolean {
  return a.xid > b.xid || (a.xid === b.xid && a.seq > b.seq);
}

export function maxPosition(a: Position, b: Position): Position {
  return isAfter(a, b) ? a : b;
}

/** Every row below the horizon has been read: (horizon, 0) sorts before any row of that xid. */
export function horizonPosition(horizon: number): Position {
  return { xid: horizon, seq: 0 };
}

export function formatPosition(p: Position): string {
  return `${p.xid}:${p.seq}`;
}
