import type { ChangeRow, FeedEvent } from '../interfaces.js';

/** No CR, LF or NUL may reach a frame: each would end or split an SSE field. */
export function sanitizeEventName(name: string): string {
  return name.replace(/[\r\n\0]/g, '_');
}

/**
 * Encodes a row once into its JSON and its SSE frame. `data` is jsonb text
 * from Postgres, which never holds a raw newline, so it is spliced in as is.
 */
export function encodeEvent(row: ChangeRow): FeedEvent {
  const json =
    `{"seq":${row.seq},"xid":"${row.xid}","project":${JSON.stringify(row.project)},` +
    `"type":${JSON.stringify(row.type)},"op":${row.op === null ? 'null' : JSON.stringify(row.op)},` +
    `"table":${row.tbl === null ? 'null' : JSON.stringify(row.tbl)},"data":${row.data ?? 'null'},"at":"${row.at}"}`;
  const frame = Buffer.from(`id: ${row.seq}\nevent: ${sanitizeEventName(row.type)}\ndata: ${json}\n\n`);
  return { pos: { xid: row.xid, seq: row.seq }, project: row.project, type: row.type, json, frame };
}

/** A control event (type `pgfeed.*`): no id, so it never moves a client's cursor. */
export function controlFrame(type: string, data: object): Buffer {
  return Buffer.from(`event: ${sanitizeEventName(type)}\ndata: ${JSON.stringify(data)}\n\n`);
}

/** The first frame: a retry hint jittered per connection, so a restart does not cause a reconnect storm. */
export function retryFrame(baseMs: number): Buffer {
  const ms = Math.round(baseMs * (1 + Math.random()));
  return Buffer.from(`retry: ${ms}\n\n`);
}

export const PING_FRAME = Buffer.from(': ping\n\n');
