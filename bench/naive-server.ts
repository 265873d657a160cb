// The comparator: what a team would write instead of pgfeed. node:http and
// pg-listen; on every NOTIFY each subscriber runs its own
//   SELECT ... FROM pgfeed.change_log WHERE project=$1 AND seq > $cursor ORDER BY seq LIMIT 512
// (one query in flight per subscriber; a NOTIFY during it triggers one more).
// It orders by seq, so it also has the skipped-row bug pgfeed's (xid, seq)
// order avoids; the bench's checker counts what that costs.
//
//   GET /v1/events?project=P&after=<seq>   SSE (Last-Event-ID wins over after)
//   GET /metrics                           naive_db_queries_total

import http from 'node:http';
import pg from 'pg';
import pgListen from 'pg-listen';

// pg-listen is CommonJS with an __esModule default export.
const createSubscriber = pgListen.default;

const url = process.env.DATABASE_URL;
if (!url) {
  console.error('naive-server: set DATABASE_URL');
  process.exit(1);
}
const host = process.env.PGFEED_HOST ?? '127.0.0.1';
const port = Number(process.env.PGFEED_PORT ?? 0);

const pool = new pg.Pool({ connectionString: url, max: 16 });
let queries = 0;

interface Row {
  seq: string;
  xid: string;
  project: string;
  type: string;
  op: string | null;
  tbl: string | null;
  data: unknown;
  created_at: Date;
}

class Subscriber {
  running = false;
  again = false;
  closed = false;

  constructor(
    readonly project: string,
    public cursor: string,
    private readonly res: http.ServerResponse,
  ) {}

  poll(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      for (;;) {
        this.again = false;
        queries++;
        const r = await pool.query<Row>(
          `SELECT seq, xid::text AS xid, project, type, op, tbl, data, created_at
             FROM pgfeed.change_log WHERE project = $1 AND seq > $2 ORDER BY seq LIMIT 512`,
          [this.project, this.cursor],
        );
        if (this.closed) return;
        let out = '';
        for (const row of r.rows) {
          const body = { seq: Number(row.seq), xid: row.xid, project: row.project, type: row.type, op: row.op, table: row.tbl, data: row.data, at: row.created_at.toISOString() };
          out += `id: ${row.seq}\nevent: ${row.type}\ndata: ${JSON.stringify(body)}\n\n`;
          this.cursor = row.seq;
        }
        if (out) this.res.write(out);
        if (r.rows.length < 512 && !this.again) break;
      }
    } catch (err) {
      console.error(JSON.stringify({ level: 50, msg: 'poll failed', err: String(err) }));
    } finally {
      this.running = false;
    }
  }
}

const subs = new Set<Subscriber>();

const server = http.createServer((req, res) => {
  const u = new URL(req.url ?? '/', 'http://x');
  if (u.pathname === '/metrics') {
    res.end(`naive_db_queries_total ${queries}\n`);
    return;
  }
  if (u.pathname !== '/v1/events') {
    res.statusCode = 404;
    res.end();
    return;
  }
  const project = u.searchParams.get('project') ?? '';
  const last = req.headers['last-event-id'];
  const after = typeof last === 'string' ? last : (u.searchParams.get('after') ?? '0');
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  res.write('retry: 1000\n\n');
  const sub = new Subscriber(project, after, res);
  subs.add(sub);
  req.on('close', () => {
    sub.closed = true;
    subs.delete(sub);
  });
  sub.poll();
});

const listener = createSubscriber({ connectionString: url }, { parse: (s: string) => s, retryTimeout: Infinity });
listener.notifications.on('pgfeed', () => {
  for (const s of subs) s.poll();
});
await listener.connect();
await listener.listenTo('pgfeed');

server.listen(port, host, () => {
  const addr = server.address() as { port: number };
  console.log(JSON.stringify({ level: 30, msg: 'listening', host, port: addr.port }));
});

async function close(): Promise<void> {
  server.closeAllConnections();
  server.close();
  await listener.close();
  await pool.end();
  process.exit(0);
}
process.on('SIGTERM', () => void close());
process.on('SIGINT', () => void close());
