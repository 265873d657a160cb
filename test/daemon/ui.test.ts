// The inspector over HTTP: /ui with a strict CSP on a loopback bind, its
// bundle and style, the operator view counting open streams by project and
// state; off on other binds unless PGFEED_UI=on, and off with PGFEED_UI=off.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { emit } from '../helpers/change-log.js';
import { startDaemon } from '../helpers/daemon.js';
import { connectSse } from '../helpers/sse-client.js';
import { waitUntil } from '../helpers/wait.js';

const db = await testDatabase(t);

t.test('on a loopback bind: the page, its script and style, with a strict CSP', async (t) => {
  const d = await startDaemon(t, db.url);
  const page = await fetch(`${d.base}/ui`);
  t.equal(page.status, 200);
  t.match(page.headers.get('content-type'), /^text\/html/);
  const csp = page.headers.get('content-security-policy') ?? '';
  t.match(csp, /default-src 'none'/, 'nothing is allowed unless named');
  t.match(csp, /script-src 'self'(;|$)/, 'scripts only from the daemon, no inline script');
  t.notMatch(csp, /unsafe-inline|unsafe-eval|\*/, 'no unsafe-inline, unsafe-eval or wildcard');
  t.match(csp, /frame-ancestors 'none'/);
  t.equal(page.headers.get('x-content-type-options'), 'nosniff');
  const html = await page.text();
  t.notMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script in the page');
  t.notMatch(html, /\bstyle=/, 'no inline style');
  const js = await fetch(`${d.base}/ui/inspector.js`);
  t.equal(js.status, 200);
  t.match(js.headers.get('content-type'), /^text\/javascript/);
  t.match(await js.text(), /text\/event-stream/, 'the bundle holds the client');
  t.equal((await fetch(`${d.base}/ui/inspector.css`)).status, 200);
  const missing = await fetch(`${d.base}/ui/nothing`);
  t.equal(missing.status, 404);
  t.match(await missing.json(), { error: { code: 'not_found' } });
});

t.test('the operator view: streams by project and state, the projects, the health', async (t) => {
  const d = await startDaemon(t, db.url);
  await emit(db.pool, 'op-a', 'tick', 2);
  await emit(db.pool, 'op-b', 'tick', 1);
  const a1 = await connectSse(`${d.base}/v1/events?project=op-a&after=0`);
  const a2 = await connectSse(`${d.base}/v1/events?project=op-a&after=now`);
  const b = await connectSse(`${d.base}/v1/events?project=op-b&after=0`);
  t.teardown(() => [a1, a2, b].forEach((s) => s.close()));
  type View = { streams: { project: string; catching_up: number; live: number; paused: number }[]; projects: string[]; catchup: { running: number; waiting: number }; readiness: { streams: number } };
  let view!: View;
  await waitUntil(async () => {
    view = (await (await fetch(`${d.base}/ui/api/streams`)).json()) as View;
    return view.streams.reduce((n, s) => n + s.live, 0) === 3;
  }, 10_000, 'the three streams to be live');
  t.same(view.streams.map((s) => [s.project, s.catching_up, s.live, s.paused]), [['op-a', 0, 2, 0], ['op-b', 0, 1, 0]], 'by project and state');
  t.ok(view.projects.includes('op-a') && view.projects.includes('op-b'), `the projects with events: ${view.projects.join(', ')}`);
  t.same(view.projects, [...view.projects].sort(), 'in name order');
  t.same(view.catchup, { running: 0, waiting: 0, held_bytes: 0, most_held_bytes: 0 }, 'no catch-up running, nothing held by live streams');
  t.equal(view.readiness.streams, 3, "with /readyz's detail");
});

t.test('off where it is not loopback, unless PGFEED_UI=on; off with PGFEED_UI=off', async (t) => {
  const wide = await startDaemon(t, db.url, { PGFEED_HOST: '0.0.0.0', PGFEED_ALLOW_UNAUTHENTICATED: 'true' });
  const base = `http://127.0.0.1:${wide.port}`;
  t.equal((await fetch(`${base}/ui`)).status, 404, 'a bind to every interface: no /ui');
  t.equal((await fetch(`${base}/ui/api/streams`)).status, 404, 'and no operator view');
  t.equal((await fetch(`${base}/healthz`)).status, 200, 'the rest is served (the witness)');
  const on = await startDaemon(t, db.url, { PGFEED_HOST: '0.0.0.0', PGFEED_ALLOW_UNAUTHENTICATED: 'true', PGFEED_UI: 'on' });
  t.equal((await fetch(`http://127.0.0.1:${on.port}/ui`)).status, 200, 'PGFEED_UI=on serves it there');
  const off = await startDaemon(t, db.url, { PGFEED_UI: 'off' });
  t.equal((await fetch(`${off.base}/ui`)).status, 404, 'PGFEED_UI=off: not even on loopback');
  t.equal((await fetch(`${off.base}/readyz`)).status, 200);
});
