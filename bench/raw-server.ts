// The ceiling: a bare uWebSockets.js broadcaster of pre-encoded SSE frames,
// with no database. It generates events itself at the requested rate (each
// frame encoded once, then written to every subscriber of its project), so
// its latency is generation → client, against pgfeed's commit → client.
//
//   GET /v1/events?project=p0        subscribe
//   GET /control/start?rate=&projects=   start emitting: seq 1, 2, ... to p0, p1, ... round-robin
//   GET /control/stop                stop; returns {"emitted": <last seq>}
//   GET /metrics                     raw_db_queries_total 0 (it has no database)

import uWS, { type HttpResponse } from '../src/http/uws.js';
import { sampleFrame } from './lib/sample-row.js';
import { nowUs } from './lib/load-client.js';

const host = process.env.PGFEED_HOST ?? '127.0.0.1';
const port = Number(process.env.PGFEED_PORT ?? 0);

interface Sub {
  res: HttpResponse;
  aborted: boolean;
}

const subs = new Map<string, Set<Sub>>();
let emitted = 0;
let timer: NodeJS.Timeout | null = null;

const app = uWS.App();

app.get('/v1/events', (res, req) => {
  const project = req.getQuery('project') ?? '';
  const sub: Sub = { res, aborted: false };
  res.onAborted(() => {
    sub.aborted = true;
    subs.get(project)?.delete(sub);
  });
  // Buffered writes are kept by uWS; the ceiling never drops a frame.
  res.onWritable(() => true);
  res.cork(() => {
    res.writeStatus('200 OK').writeHeader('Content-Type', 'text/event-stream').writeHeader('Cache-Control', 'no-cache');
    res.write(`retry: ${1000 + Math.floor(Math.random() * 1000)}\n\n`);
  });
  let set = subs.get(project);
  if (!set) subs.set(project, (set = new Set()));
  set.add(sub);
});

app.get('/control/start', (res, req) => {
  const rate = Number(req.getQuery('rate'));
  const projects = Number(req.getQuery('projects'));
  emitted = 0;
  const t0 = performance.now();
  if (timer) clearInterval(timer);
  timer = setInterval(() => {
    const due = Math.floor(((performance.now() - t0) / 1000) * rate);
    if (due <= emitted) return;
    // Frames due in one tick are joined per project and written once per
    // subscriber, as any broadcaster would.
    const batch = new Map<string, string>();
    const sent = Math.round(nowUs());
    for (; emitted < due; ) {
      const seq = ++emitted;
      const project = `p${(seq - 1) % projects}`;
      batch.set(project, (batch.get(project) ?? '') + sampleFrame(seq, project, sent));
    }
    for (const [project, frames] of batch) {
      const set = subs.get(project);
      if (!set) continue;
      for (const s of set) if (!s.aborted) s.res.cork(() => s.res.write(frames));
    }
  }, 2);
  res.end('{"ok":true}');
});

app.get('/control/stop', (res) => {
  if (timer) clearInterval(timer);
  timer = null;
  res.end(JSON.stringify({ emitted }));
});

app.get('/metrics', (res) => {
  res.end('raw_db_queries_total 0\n');
});

let listenSocket: unknown = null;
app.listen(host, port, (ls) => {
  if (!ls) {
    console.error(JSON.stringify({ level: 50, msg: `raw-server: cannot listen on ${host}:${port}` }));
    process.exit(1);
  }
  listenSocket = ls;
  console.log(JSON.stringify({ level: 30, msg: 'listening', host, port: uWS.us_socket_local_port(ls as never) }));
});

function close(): void {
  if (timer) clearInterval(timer);
  if (listenSocket) uWS.us_listen_socket_close(listenSocket as never);
  for (const set of subs.values()) for (const s of set) if (!s.aborted) s.res.close();
  process.exit(0);
}
process.on('SIGTERM', close);
process.on('SIGINT', close);
