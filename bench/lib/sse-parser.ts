// Incremental HTTP/1.1 response parser for raw sockets, feeding the shared
// text/event-stream decoder.
//
// The load generator keeps thousands of streams per process, so this avoids
// node:http (one IncomingMessage and stream pipeline per response) and works
// on the bytes directly: status line and headers, then an optional chunked
// transfer decoding, then SSE line framing.

import { SseDecoder, type SseEvent, type SseHandlers as EventHandlers } from '../../test/helpers/sse-decoder.js';

export type { SseEvent };

export interface SseHandlers extends Required<EventHandlers> {
  onHead(status: number, headers: Record<string, string>): void;
  /** The response body ended (last chunk of a chunked body). */
  onEnd(): void;
}

const enum Phase {
  Head,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Identity,
  Done,
}

const CRLF2 = Buffer.from('\r\n\r\n');

export class SseParser {
  private phase = Phase.Head;
  private head: Buffer | null = null;
  private chunkLeft = 0;
  private sizeLine = '';
  private readonly events: SseDecoder;

  constructor(private readonly h: SseHandlers) {
    this.events = new SseDecoder(h);
  }

  /** Feed raw socket bytes. */
  push(buf: Buffer): void {
    let off = 0;
    if (this.phase === Phase.Head) {
      const all = this.head ? Buffer.concat([this.head, buf]) : buf;
      const end = all.indexOf(CRLF2);
      if (end < 0) {
        this.head = all;
        return;
      }
      this.head = null;
      this.parseHead(all.toString('latin1', 0, end));
      buf = all;
      off = end + 4;
    }
    while (off < buf.length) {
      switch (this.phase) {
        case Phase.Identity:
          this.body(buf, off, buf.length);
          return;
        case Phase.ChunkSize: {
          const nl = buf.indexOf(10, off);
          if (nl < 0) {
            this.sizeLine += buf.toString('latin1', off);
            return;
          }
          this.sizeLine += buf.toString('latin1', off, nl);
          off = nl + 1;
          // Chunk extensions (";name=value") are allowed and ignored.
          const size = parseInt(this.sizeLine, 16);
          this.sizeLine = '';
          if (size === 0) {
            this.phase = Phase.Done;
            this.h.onEnd();
            return;
          }
          this.chunkLeft = size;
          this.phase = Phase.ChunkData;
          break;
        }
        case Phase.ChunkData: {
          const end = Math.min(buf.length, off + this.chunkLeft);
          this.body(buf, off, end);
          this.chunkLeft -= end - off;
          off = end;
          if (this.chunkLeft === 0) this.phase = Phase.ChunkDataEnd;
          break;
        }
        case Phase.ChunkDataEnd: {
          // Skip the CRLF that closes each chunk, possibly split across reads.
          const nl = buf.indexOf(10, off);
          if (nl < 0) return;
          off = nl + 1;
          this.phase = Phase.ChunkSize;
          break;
        }
        default:
          return;
      }
    }
  }

  private parseHead(head: string): void {
    const lines = head.split('\r\n');
    const status = Number(lines[0].split(' ')[1]);
    const headers: Record<string, string> = {};
    for (let i = 1; i < lines.length; i++) {
      const c = lines[i].indexOf(':');
      if (c > 0) headers[lines[i].slice(0, c).trim().toLowerCase()] = lines[i].slice(c + 1).trim();
    }
    this.phase = /chunked/i.test(headers['transfer-encoding'] ?? '') ? Phase.ChunkSize : Phase.Identity;
    this.h.onHead(status, headers);
  }

  /** What this parser holds unparsed: an unfinished head, chunk-size line or event line. */
  held(): number {
    return (this.head?.length ?? 0) + this.sizeLine.length + this.events.pendingChars;
  }

  private body(buf: Buffer, start: number, end: number): void {
    this.events.push(buf.subarray(start, end));
  }
}
