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
    setTimeout(() => sink.cork(() => (pushedBack = !sink.write(Buffer.alloc(TOTAL, 'x')))), 50);
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
