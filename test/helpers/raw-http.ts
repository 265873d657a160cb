// A request written byte for byte on a socket, for inputs that node:http and
// fetch refuse to send (control characters in headers, huge headers).
import net from 'node:net';

export interface RawResponse {
  /** 0 when the server closed or reset the connection without a status line. */
  readonly status: number;
  readonly head: string;
  readonly body: string;
  /** How the connection ended: the server closed it, reset it, or we stopped waiting. */
  readonly ended: 'closed' | 'reset' | 'timeout';
}

/**
 * Sends `request` and collects what comes back until the server closes the
 * connection or `idleMs` passes without a byte (a stream would never close).
 */
export function rawRequest(port: number, request: string | Buffer, idleMs = 1_000): Promise<RawResponse> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (ended: RawResponse['ended']) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const head = split < 0 ? text : text.slice(0, split);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      resolve({ status: m ? Number(m[1]) : 0, head, body: split < 0 ? '' : text.slice(split + 4), ended });
    };
    let timer = setTimeout(() => finish('timeout'), idleMs);
    sock.on('data', (d) => {
      chunks.push(d);
      clearTimeout(timer);
      timer = setTimeout(() => finish('timeout'), idleMs);
    });
    sock.on('end', () => finish('closed'));
    sock.on('close', () => finish('closed'));
    sock.on('error', () => finish('reset'));
    sock.write(request);
  });
}

/** The header value of a raw response head, or undefined. */
export function rawHeader(res: RawResponse, name: string): string | undefined {
  const re = new RegExp(`^${name}:\\s*(.*)$`, 'im');
  return re.exec(res.head)?.[1]?.trim();
}
