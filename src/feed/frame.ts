import type { ChangeRow, FeedEvent } from '../interfaces.js';
import { changeEventJson, controlEvent, PING, retryField, sseEvent, type ControlEvents } from '../protocol.js';

/** Encodes a row once into its JSON and its SSE frame (src/protocol.ts has the format). */
export function encodeEvent(row: ChangeRow): FeedEvent {
  const json = changeEventJson(row);
  const frame = Buffer.from(frameText(row, true, json));
  return { pos: { xid: row.xid, seq: row.seq }, project: row.project, type: row.type, json, frame };
}

/** A row's SSE frame as text. `named: false` leaves out the `event:` line (`?event_names=off`). */
export function frameText(row: ChangeRow, named = true, json = changeEventJson(row)): string {
  return sseEvent({ id: String(row.seq), event: named ? row.type : undefined, data: json });
}

/** A control event (type `pgfeed.*`): no id, so it never moves a client's cursor. */
export function controlFrame<K extends keyof ControlEvents>(type: K, data: ControlEvents[K]): Buffer {
  return Buffer.from(controlEvent(type, data));
}

/** A retry hint jittered per connection, so a restart does not cause a reconnect storm. */
export function retryFrame(baseMs: number): Buffer {
  return Buffer.from(retryField(Math.round(baseMs * (1 + Math.random()))));
}

/**
 * The frame without its `event:` line (`?event_names=off`), as two views of
 * the encoded frame: no copy until the slab joins them. The id line comes
 * first and the sanitised name holds no newline, so the data starts after
 * the second newline.
 */
export function unnamedParts(frame: Buffer): [Buffer, Buffer] {
  const idEnd = frame.indexOf(10) + 1;
  return [frame.subarray(0, idEnd), frame.subarray(frame.indexOf(10, idEnd) + 1)];
}

export const PING_FRAME = Buffer.from(PING);
