/**
 * Where an event stands in delivery order: (xid, seq), compared as the
 * daemon compares them (docs/ordering.md). A seq alone is not enough: seqs
 * are unique but not monotonic in a stream. The xid is a decimal string (an
 * xid8 can pass 2^53), compared by length and then digit by digit.
 */
import type { ChangeEvent } from '../protocol.js';

export interface EventPosition {
  readonly xid: string;
  readonly seq: number;
}

export function positionOf(ev: Pick<ChangeEvent, 'xid' | 'seq'>): EventPosition {
  return { xid: ev.xid, seq: ev.seq };
}

/** Whether `a` comes after `b` in delivery order. */
export function isAfter(a: EventPosition, b: EventPosition): boolean {
  if (a.xid !== b.xid) return a.xid.length !== b.xid.length ? a.xid.length > b.xid.length : a.xid > b.xid;
  return a.seq > b.seq;
}
