/**
 * The inspector: a page at /ui built on pgfeed/client (src/ui/inspector.ts,
 * bundled by `npm run build` into dist/inspector.bundle.js), and the
 * operator view it polls, /ui/api/streams. Served on a loopback host by
 * default (PGFEED_UI=auto) and elsewhere only with PGFEED_UI=on, since the
 * operator view names every project with an open stream.
 *
 * The page never puts data into HTML (textContent only), and a strict
 * Content-Security-Policy forbids inline script and style, any other
 * origin, frames and forms, so a hostile payload can at worst be text.
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { PgfeedError } from '../errors.js';
import type { RouteContext } from './context.js';
import { refusedUnlessOperator } from './ops-routes.js';
import { reject } from './reject.js';
import { sendJson } from './status.js';
import type { HttpRequest, HttpResponse } from './uws.js';

export const UI_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': UI_CSP,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cache-Control': 'no-store',
};

/** auto: only where the daemon listens on loopback, so nobody else can reach the operator view by default. */
export function uiEnabled(setting: 'auto' | 'on' | 'off', host: string): boolean {
  if (setting !== 'auto') return setting === 'on';
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pgfeed inspector</title>
<link rel="stylesheet" href="/ui/inspector.css">
<script type="module" src="/ui/inspector.js"></script>
</head>
<body>
<header>
  <h1>pgfeed</h1>
  <form id="controls" autocomplete="off">
    <label>project <input id="project" list="projects" required></label>
    <datalist id="projects"></datalist>
    <label>types <input id="types" placeholder="orders.*,pr_opened"></label>
    <label>after <input id="after" placeholder="0, now or a seq" value="now"></label>
    <label>token <input id="token" type="password" autocomplete="off" placeholder="JWT, when auth is on"></label>
    <label>operator token <input id="optoken" type="password" autocomplete="off" placeholder="PGFEED_OPERATOR_TOKEN"></label>
    <button id="connect" type="submit">follow</button>
    <button id="pause" type="button" disabled>pause</button>
  </form>
  <dl id="status">
    <dt>state</dt><dd id="state">idle</dd>
    <dt>position</dt><dd id="position">-</dd>
    <dt>lag</dt><dd id="lag">-</dd>
    <dt>rate</dt><dd id="rate">-</dd>
    <dt>events</dt><dd id="count">0</dd>
  </dl>
</header>
<main>
  <section>
    <h2>events</h2>
    <table id="events"><thead><tr><th>seq</th><th>at</th><th>type</th><th>op</th><th>table</th><th>data</th></tr></thead><tbody></tbody></table>
  </section>
  <section id="operator">
    <h2>operator</h2>
    <label>filter projects <input id="opfilter"></label>
    <dl id="health"></dl>
    <table id="streams"><thead><tr><th>project</th><th>catching up</th><th>live</th><th>paused</th><th>oldest</th></tr></thead><tbody></tbody></table>
  </section>
</main>
</body>
</html>
`;

const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
header{background:#1b1f24;color:#f6f7f9;padding:.5rem 1rem;display:flex;flex-wrap:wrap;gap:1rem;align-items:center}
h1{font-size:1.2rem;margin:0}h2{font-size:1rem;margin:.5rem 0}
form{display:flex;gap:.5rem;flex-wrap:wrap;align-items:center}input{font:inherit;padding:.15rem .3rem}
dl{display:grid;grid-template-columns:auto auto;gap:0 .5rem;margin:0}dt{opacity:.7}dd{margin:0;font-variant-numeric:tabular-nums}
#status{grid-template-columns:repeat(5,auto auto)}
main{display:grid;grid-template-columns:2fr 1fr;gap:1rem;padding:1rem}
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:.2rem .4rem;border-bottom:1px solid #e3e6ea;vertical-align:top}
td.data{font-family:ui-monospace,monospace;white-space:pre-wrap;word-break:break-all}
.state-open{color:#1a7f37}.state-retrying,.state-paused{color:#9a6700}.state-closed{color:#cf222e}
`;

/** The bundle, read once; built by `npm run build` (tsc, then esbuild). */
let bundle: Promise<Buffer> | null = null;
const loadBundle = () => (bundle ??= readFile(new URL('../inspector.bundle.js', import.meta.url)));

function send(res: HttpResponse, type: string, body: string | Buffer): void {
  res.cork(() => {
    res.writeStatus('200 OK');
    res.writeHeader('Content-Type', type);
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.writeHeader(k, v);
    res.end(body);
  });
}

type Handler = (res: HttpResponse, req: HttpRequest) => void;

/** The inspector's routes, or 404s when it is off. */
export function uiRoutes(ctx: RouteContext): Readonly<Record<string, Handler>> {
  const off: Handler = (res) => reject(ctx, res, new PgfeedError('not_found'));
  if (!ctx.ui) return { '/ui': off, '/ui/*': off };
  return {
    '/ui': (res) => send(res, 'text/html; charset=utf-8', PAGE),
    '/ui/inspector.css': (res) => send(res, 'text/css; charset=utf-8', STYLE),
    '/ui/inspector.js': (res) => {
      let aborted = false;
      res.onAborted(() => (aborted = true));
      loadBundle().then(
        (js) => !aborted && send(res, 'text/javascript; charset=utf-8', js),
        (err: Error) => {
          bundle = null;
          if (!aborted) reject(ctx, res, new PgfeedError('internal', `the inspector's script is not built (${err.message}): run npm run build`));
        },
      );
    },
    // Like /metrics, the operator's alone once PGFEED_OPERATOR_TOKEN is set.
    '/ui/api/streams': (res, req) => {
      if (refusedUnlessOperator(ctx, res, req, '/ui/api/streams')) return;
      let aborted = false;
      res.onAborted(() => (aborted = true));
      void operatorView(ctx).then(
        (view) => !aborted && sendJson(res, '200 OK', view),
        (err: unknown) => !aborted && reject(ctx, res, err),
      );
    },
    '/ui/*': off,
  };
}

/** What an operator asks an admin page: streams by project and state, and the daemon's health. */
async function operatorView(ctx: RouteContext) {
  const byProject = new Map<string, { catching_up: number; live: number; paused: number; oldest_opened_at: string; held_bytes: number }>();
  for (const s of ctx.streams.sse) {
    let p = byProject.get(s.project);
    if (!p) byProject.set(s.project, (p = { catching_up: 0, live: 0, paused: 0, oldest_opened_at: new Date(s.openedAt).toISOString(), held_bytes: 0 }));
    if (s.sub.state === 'catching_up' || s.sub.state === 'live' || s.sub.state === 'paused') p[s.sub.state]++;
    p.held_bytes += s.sub.heldBytes;
    const at = new Date(s.openedAt).toISOString();
    if (at < p.oldest_opened_at) p.oldest_opened_at = at;
  }
  const held = ctx.streams.catchupHeld();
  const [readiness, projects, notifyQueue] = await Promise.all([
    ctx.readiness(),
    ctx.feed.projects(200).catch(() => null),
    ctx.metrics.notifyQueue.get().then((g) => g.values[0]?.value ?? null, () => null),
  ]);
  return {
    streams: [...byProject].map(([project, counts]) => ({ project, ...counts })).sort((a, b) => a.project.localeCompare(b.project)),
    catchup: { ...ctx.feed.catchupLoad, held_bytes: held.total, most_held_bytes: held.most },
    notify_queue_usage: notifyQueue,
    projects,
    readiness,
  };
}
