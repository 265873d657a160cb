// A randomized cross-tenant leak test: many projects, clients holding
// random grants as tokens or tickets, concurrent writes and reconnects.
// Every stream must carry exactly its project's events that its grant
// allows, in delivery order, and nothing else.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { DELIVERY_ORDER } from '../helpers/change-log.js';
import { startDaemon } from '../helpers/daemon.js';
import { mulberry32 } from '../helpers/random.js';
import { connectSse, getJson, type SseClient } from '../helpers/sse-client.js';
import { sleep } from '../helpers/wait.js';
import { AUTH_ENV, bearer, mintTicket, token } from '../helpers/tokens.js';

const SEED = Number(process.env.PGFEED_LEAK_SEED ?? Date.now() % 1_000_000);
const PROJECTS = 24;
const CLIENTS = 80;
const WRITES = 200;
const TYPES = ['orders.insert', 'orders.update', 'users.insert', 'users.delete', 'pr_opened', 'pr_closed'];
/** Every allowlist holds orders.*, so each stream can see its project's final marker. */
const ALLOWLISTS: (string[] | undefined)[] = [undefined, ['orders.*'], ['orders.*', 'pr_*'], ['orders.insert', 'orders.marker', 'users.*']];

const matches = (p: string, name: string) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : p === name);

interface Client {
  project: string;
  projects: string[];
  types?: string[];
  tok: string;
  ticket?: string;
  seen: { seq: number; project: string; type: string }[];
  stream?: SseClient;
  /** How many of the current stream's events are in `seen`. */
  read: number;
}

t.test(`no event reaches a stream its grant does not allow (seed ${SEED})`, async (t) => {
  const rnd = mulberry32(SEED);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)];
  const db = await testDatabase(t);
  const daemon = await startDaemon(t, db.url, AUTH_ENV);
  const projects = Array.from({ length: PROJECTS }, (_, i) => `t${i}`);

  const clients: Client[] = [];
  let refused = 0;
  for (let i = 0; i < CLIENTS; i++) {
    const own = projects.filter(() => rnd() < 0.25);
    // Some grants are prefix globs: t1* is t1 and t10-t15.
    const granted = rnd() < 0.2 ? [`t${Math.floor(rnd() * 2) + 1}*`] : own.length ? own : [pick(projects)];
    const types = pick(ALLOWLISTS);
    const tok = await token({ sub: `client-${i}`, projects: granted, types });
    // Each client also tries a project it is not granted: that must be 403, never a stream.
    const outside = projects.find((p) => !granted.some((g) => matches(g, p)));
    if (outside) {
      const r = await getJson(`${daemon.base}/v1/changes?project=${outside}`, bearer(tok));
      t.equal(r.body.error?.code, 'project_forbidden', `client ${i}: ${outside} is forbidden`);
      refused++;
    }
    const allowed = projects.filter((p) => granted.some((g) => matches(g, p)));
    clients.push({ project: pick(allowed), projects: granted, types, tok, seen: [], read: 0 });
  }

  /** Moves what the client's current stream received into `seen`, which spans its reconnects. */
  const collect = (c: Client) => {
    const s = c.stream;
    if (!s) return;
    for (; c.read < s.events.length; c.read++) {
      const e = s.events[c.read];
      if (e.id !== null) c.seen.push({ seq: Number(e.id), project: e.json.project, type: e.json.type });
    }
  };
  const connect = async (c: Client) => {
    const last = c.seen.at(-1);
    const resume: Record<string, string> = last ? { 'Last-Event-ID': String(last.seq) } : {};
    let url = `${daemon.base}/v1/events?project=${c.project}&after=0`;
    let headers: Record<string, string> = { ...resume, ...bearer(c.tok) };
    // A used ticket reopens only a stream that resumes (docs/security.md): one that saw no event yet needs a new ticket.
    if (!last) c.ticket = undefined;
    if (c.ticket || rnd() < 0.5) {
      c.ticket ??= (await mintTicket(daemon.base, c.tok, { project: c.project })).body.ticket as string;
      url += `&ticket=${c.ticket}`;
      headers = resume;
    }
    const s = await connectSse(url, headers);
    t.equal(s.status, 200, 'a stream');
    c.stream = s;
    c.read = 0;
  };
  await Promise.all(clients.map(connect));

  // Writers: transactions that touch several projects at once, while clients reconnect.
  const writes = (async () => {
    for (let w = 0; w < WRITES; w++) {
      await db.withTransaction(async (q) => {
        for (let k = 0; k < 1 + Math.floor(rnd() * 4); k++) await q.query(`SELECT pgfeed.emit($1, $2, '{}')`, [pick(projects), pick(TYPES)]);
      });
    }
  })();
  const reconnects = (async () => {
    for (let r = 0; r < CLIENTS; r++) {
      const c = pick(clients);
      c.stream?.close();
      collect(c);
      await sleep(10);
      await connect(c);
    }
  })();
  await Promise.all([writes, reconnects]);
  const markers = new Map<string, number>();
  for (const p of projects) markers.set(p, Number((await db.pool.query(`SELECT pgfeed.emit($1, 'orders.marker', '{}') AS s`, [p])).rows[0].s));
  for (const c of clients) {
    const marker = markers.get(c.project)!;
    await c.stream!.waitFor((s) => s.seqs.includes(marker), 20_000, `the marker of ${c.project}`);
    collect(c);
  }

  let delivered = 0;
  for (const [i, c] of clients.entries()) {
    const leaked = c.seen.filter((e) => e.project !== c.project || (c.types && !c.types.some((p) => matches(p, e.type))));
    t.same(leaked, [], `client ${i} (${c.project}, types ${c.types?.join(',') ?? 'all'}): nothing it may not see`);
    const { rows } = await db.pool.query<{ seq: string; type: string }>(`SELECT seq, type FROM pgfeed.change_log WHERE project = $1 ${DELIVERY_ORDER}`, [c.project]);
    const expected = rows.filter((r) => !c.types || c.types.some((p) => matches(p, r.type))).map((r) => Number(r.seq));
    t.same(c.seen.map((e) => e.seq), expected, `client ${i}: every allowed event once, in order, across its reconnects`);
    delivered += c.seen.length;
    c.stream!.close();
  }
  t.comment(`seed ${SEED}: ${PROJECTS} projects, ${CLIENTS} clients, ${CLIENTS} reconnects, ${WRITES} transactions, ${delivered} events delivered, ${refused} forbidden requests refused`);
});
