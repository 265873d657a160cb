// A request written byte for byte on a socket, for inputs that node:http and
// fetch refuse to send (control characters in headers, huge headers).
import net from 'node:net';

export interface RawResponse {
  /** 0 when the server closed or reset the connection without a status line. */
  readonly status: number;
  readonly head: string;
  readonly body: string;
  /** How the connection ended: the server closed it, reset it, or we stopped waiting. */
  readonly ended: 'closed' | 'reset' | 'timeout' | 'enough';
  /** From the request's first byte to the end: how long the server held the socket. */
  readonly ms: number;
  /** Everything received, as latin1 (for pipelined responses). */
  readonly raw: string;
}

export interface RawOptions {
  /** Stop waiting after this long without a byte (a stream would never close). */
  readonly idleMs?: number;
  /** Half-close after writing: the server reads an end of file. */
  readonly halfClose?: boolean;
  /** Write the request in pieces of this many bytes, `gapMs` apart (a slowloris). */
  readonly drip?: { readonly bytes: number; readonly gapMs: number };
  /** Stop once what came back satisfies this (a stream's first frame): ended is then 'enough'. */
  readonly until?: (received: string) => boolean;
}

/**
 * Sends `request` and collects what comes back until the server closes the
 * connection or `idleMs` passes without a byte (a stream would never close).
 */
export function rawRequest(port: number, request: string | Buffer, opts: number | RawOptions = {}): Promise<RawResponse> {
  const { idleMs = 1_000, halfClose = false, drip, until } = typeof opts === 'number' ? { idleMs: opts } : opts;
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const started = Date.now();
    let done = false;
    let dripTimer: NodeJS.Timeout | undefined;
    const finish = (ended: RawResponse['ended']) => {
      if (done) return;
      done = true;
      const ms = Date.now() - started;
      clearTimeout(timer);
      clearTimeout(dripTimer);
      sock.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const head = split < 0 ? text : text.slice(0, split);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      resolve({ status: m ? Number(m[1]) : 0, head, body: split < 0 ? '' : text.slice(split + 4), ended, ms, raw: text });
    };
    let timer = setTimeout(() => finish('timeout'), idleMs);
    sock.on('data', (d) => {
      chunks.push(d);
      if (until?.(Buffer.concat(chunks).toString('latin1'))) return finish('enough');
      clearTimeout(timer);
      timer = setTimeout(() => finish('timeout'), idleMs);
    });
    sock.on('end', () => finish('closed'));
    sock.on('close', () => finish('closed'));
    sock.on('error', () => finish('reset'));
    const bytes = Buffer.from(request as string, typeof request === 'string' ? 'latin1' : undefined);
    if (!drip) {
      sock.write(bytes);
      if (halfClose) sock.end();
      return;
    }
    // A drip must not count as idle: the idle timer runs from the last byte either way.
    let at = 0;
    const next = () => {
      if (done || at >= bytes.length) return;
      sock.write(bytes.subarray(at, (at += drip.bytes)));
      clearTimeout(timer);
      timer = setTimeout(() => finish('timeout'), idleMs + drip.gapMs);
      dripTimer = setTimeout(next, drip.gapMs);
    };
    next();
  });
}

/** The header value of a raw response head, or undefined. */
export function rawHeader(res: RawResponse, name: string): string | undefined {
  const re = new RegExp(`^${name}:\\s*(.*)$`, 'im');
  return re.exec(res.head)?.[1]?.trim();
}
