// Incremental HTTP/1.1 response + Server-Sent Events parser for raw sockets.
//
// The load generator keeps thousands of streams per process, so this avoids
// node:http (one IncomingMessage and stream pipeline per response) and works
// on the bytes directly: status line and headers, then an optional chunked
// transfer decoding, then SSE line framing. Only what the bench needs is kept:
// id, event, data and retry fields; comments are counted, not stored.

import { StringDecoder } from 'node:string_decoder';

export interface SseEvent {
  id: string | undefined;
  event: string;
  data: string;
}

export interface SseHandlers {
  onHead(status: number, headers: Record<string, string>): void;
  onEvent(ev: SseEvent): void;
  onRetry(ms: number): void;
  onComment(): void;
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
  private decoder = new StringDecoder('utf8');
  private text = '';
  // Fields of the event being assembled; SSE dispatches on a blank line.
  private id: string | undefined;
  private event = '';
  private data: string | null = null;

  constructor(private readonly h: SseHandlers) {}

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

  private body(buf: Buffer, start: number, end: number): void {
    let t = this.text + this.decoder.write(buf.subarray(start, end));
    // SSE allows CRLF, LF and CR line ends; normalise only when needed.
    if (t.indexOf('\r') >= 0) t = t.replace(/\r\n?/g, '\n');
    let pos = 0;
    for (;;) {
      const nl = t.indexOf('\n', pos);
      if (nl < 0) break;
      this.line(t, pos, nl);
      pos = nl + 1;
    }
    this.text = pos === 0 ? t : t.slice(pos);
  }

  private line(t: string, start: number, end: number): void {
    if (start === end) {
      if (this.data !== null) this.h.onEvent({ id: this.id, event: this.event || 'message', data: this.data });
      this.data = null;
      this.event = '';
      return;
    }
    const c0 = t.charCodeAt(start);
    if (c0 === 58 /* : */) {
      this.h.onComment();
      return;
    }
    let colon = t.indexOf(':', start);
    if (colon < 0 || colon > end) colon = end;
    const field = t.slice(start, colon);
    let vstart = colon + 1;
    if (t.charCodeAt(vstart) === 32) vstart++;
    const value = vstart <= end ? t.slice(vstart, end) : '';
    switch (field) {
      case 'data':
        this.data = this.data === null ? value : this.data + '\n' + value;
        break;
      case 'id':
        // The last event ID persists across events, as in EventSource.
        if (value.indexOf('\0') < 0) this.id = value;
        break;
      case 'event':
        this.event = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.h.onRetry(Number(value));
        break;
    }
  }
}
