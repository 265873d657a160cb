// The uWS response adapter over a real socket: bytes that uWS had to buffer
// reach a client that reads again, even when the stream writes nothing more.
// (uWS leaves its own buffer alone while an onWritable handler is registered.)
import net from 'node:net';
import t from 'tap';
import uWS from '../../src/http/uws.js';
import { SseSink } from '../../src/http/sse-sink.js';
import { waitUntil } from '../helpers/wait.js';

const TOTAL = 8 * 1024 * 1024;

t.test('a buffered write is sent once the client reads again, with nothing written after it', async (t) => {
  let pushedBack: boolean | null = null;
  const app = uWS.App().get('/*', (res) => {
    const sink = new SseSink(res);
    res.cork(() => res.writeHeader('Content-Type', 'text/event-stream').write(': open\n\n'));
    // Far more than the socket buffers hold, while the client is not reading.
    setTimeout(() => (pushedBack = !sink.write(Buffer.alloc(TOTAL, 'x'))), 50);
  });
  const listenSocket = await new Promise<uWS.us_listen_socket>((resolve, reject) =>
    app.listen('127.0.0.1', 0, (ls) => (ls ? resolve(ls) : reject(new Error('cannot listen')))),
  );
  t.teardown(() => uWS.us_listen_socket_close(listenSocket));
  const port = uWS.us_socket_local_port(listenSocket);

  const socket = net.connect(port, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nHost: test\r\n\r\n'));
  t.teardown(() => socket.destroy());
  socket.pause();
  let received = 0;
  socket.on('data', (d: Buffer) => (received += d.length));
  await waitUntil(() => pushedBack !== null, 10_000, 'the big write');
  t.equal(pushedBack, true, 'the write pushed back: uWS buffered part of it');
  socket.resume();
  await waitUntil(() => received >= TOTAL, 10_000, `all ${TOTAL} bytes`, { intervalMs: 20 });
  t.pass(`all ${TOTAL} bytes arrived (${received} with the HTTP head and chunk framing)`);
});

/** The chunk sizes of a chunked HTTP/1.1 body, and the body, from the raw bytes of a response. */
function chunksOf(raw: Buffer): { sizes: number[]; body: Buffer } {
  let at = raw.indexOf('\r\n\r\n') + 4;
  const sizes: number[] = [];
  const parts: Buffer[] = [];
  for (;;) {
    const nl = raw.indexOf('\r\n', at);
    const size = parseInt(raw.toString('latin1', at, nl), 16);
    if (size === 0) break;
    sizes.push(size);
    parts.push(raw.subarray(nl + 2, nl + 2 + size));
    at = nl + 2 + size + 2;
  }
  return { sizes, body: Buffer.concat(parts) };
}

// uWS.js 20.30 drops the bytes of a write larger than its 16 KiB cork
// buffer when, while corked, the flush before it is cut short by a full
// socket (sse-sink.ts, MAX_WRITE): the client gets a chunk header without its
// data. The sink never makes such a write, so no chunk on the wire may be
// larger than that buffer, whatever the frames.
t.test('no write larger than uWS\'s cork buffer reaches uWS, and the bytes arrive whole and in order', async (t) => {
  const frames = [Buffer.alloc(200_000, 'a'), Buffer.alloc(10, 'b'), Buffer.alloc(64 * 1024, 'c'), Buffer.alloc(16 * 1024, 'd')];
  const app = uWS.App().get('/*', (res) => {
    const sink = new SseSink(res);
    res.cork(() => res.writeHeader('Content-Type', 'text/event-stream').write(': open\n\n'));
    // As a stream writes a catch-up batch: several frames back to back.
    setTimeout(() => {
      frames.forEach((f) => sink.write(f));
      sink.end();
    }, 10);
  });
  const listenSocket = await new Promise<uWS.us_listen_socket>((resolve, reject) =>
    app.listen('127.0.0.1', 0, (ls) => (ls ? resolve(ls) : reject(new Error('cannot listen')))),
  );
  t.teardown(() => uWS.us_listen_socket_close(listenSocket));
  // Connection: close, so that uWS closes the socket once the response ends.
  const socket = net.connect(uWS.us_socket_local_port(listenSocket), '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n'));
  t.teardown(() => socket.destroy());
  const raw: Buffer[] = [];
  socket.on('data', (d: Buffer) => raw.push(d));
  await new Promise<void>((resolve) => socket.on('close', () => resolve()));
  const { sizes, body } = chunksOf(Buffer.concat(raw));
  const corkBuffer = 16 * 1024;
  t.ok(sizes.length > frames.length, `the big frames went in several chunks (${sizes.length})`);
  t.ok(Math.max(...sizes) + 12 <= corkBuffer, `every chunk fits the cork buffer with its framing (largest ${Math.max(...sizes)} bytes)`);
  t.ok(body.equals(Buffer.concat([Buffer.from(': open\n\n'), ...frames])), 'the body is every frame, whole and in order');
});
