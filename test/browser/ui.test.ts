// The inspector in a real browser (Debian's chromium): /ui opens on a
// project, inserted rows appear, hostile payloads show as text and run
// nothing, and a daemon restart is followed by a resume with no duplicate.
// A screenshot is saved to test/artifacts/ui.png.
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { deliveryOrder, emit } from '../helpers/change-log.js';
import { launchBrowser } from '../helpers/browser.js';
import { startDaemon } from '../helpers/daemon.js';
import { freeLowPort } from '../helpers/free-port.js';
import { startSwitchProxy } from '../helpers/switch-proxy.js';
import { waitUntil } from '../helpers/wait.js';

const db = await testDatabase(t);
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));

t.test('/ui: live rows, hostile payloads as text, a daemon restart resumed without a duplicate', async (t) => {
  const port = await freeLowPort();
  const env = { PGFEED_PORT: String(port), PGFEED_RETRY_MS: '100', PGFEED_SHUTDOWN_TIMEOUT_MS: '5000' };
  const a = await startDaemon(t, db.url, env);
  const browser = await launchBrowser(t);
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  // Failed loads are expected while the daemon is down (and /favicon.ico is a 404); a CSP violation is "Refused to …".
  page.on('console', (m) => m.type() === 'error' && !m.text().startsWith('Failed to load resource') && problems.push(`console: ${m.text()}`));
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  await page.goto(`${a.base}/ui?project=web&after=0`);
  const seqs = () => page.$$eval('#events tbody tr', (rows) => rows.map((r) => Number((r as HTMLElement).dataset.seq)).reverse());
  const rows = async (n: number, what: string) => waitUntil(async () => (await seqs()).length >= n, 20_000, what);

  await emit(db.pool, 'web', 'orders.insert', 3);
  await rows(3, 'the first rows');
  // Hostile: markup and script in the payload and in the type name.
  const hostile = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';
  await db.pool.query("SELECT pgfeed.emit('web', $1, jsonb_build_object('html', $2::text))", ['<b onmouseover=alert(1)>t</b>', hostile]);
  await emit(db.pool, 'web', 'marker', 1); // after the hostile event: once it shows, the hostile one has been rendered
  await rows(5, 'the hostile row and the marker');
  const hostileRow = await page.$eval('#events tbody tr:nth-child(2)', (r) => ({ type: r.children[2].textContent, data: r.children[5].textContent, elements: r.querySelectorAll('img, script, b').length }));
  t.equal(hostileRow.type, '<b onmouseover=alert(1)>t</b>', 'the type name shows as text');
  t.equal(hostileRow.data, JSON.stringify({ html: hostile }), 'the payload shows as text');
  t.equal(hostileRow.elements, 0, 'no element was made from it');
  t.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined, 'no script from it ran');

  mkdirSync(ARTIFACTS, { recursive: true });
  await waitUntil(async () => (await page.textContent('#health')) !== '', 10_000, 'the operator view');

  // The daemon restarts on the same port; the page's feed resumes from the last row it showed.
  t.equal(await a.stop('SIGTERM'), 0);
  await emit(db.pool, 'web', 'tick', 5);
  await startDaemon(t, db.url, env);
  await emit(db.pool, 'web', 'tick', 5);
  await emit(db.pool, 'web', 'marker', 1);
  const all = await deliveryOrder(db.pool, 'web');
  await rows(all.length, 'every row after the restart');
  t.same(await seqs(), all, 'every event once, in order, across the restart');
  t.match(await page.textContent('#state'), /^open$/, 'the page says it is open');
  await waitUntil(async () => (await page.$$eval('#streams tbody td:first-child', (tds) => tds.map((td) => td.textContent))).includes('web'), 10_000, "the operator view to list the page's own stream");
  await page.screenshot({ path: `${ARTIFACTS}ui.png`, fullPage: true });
  t.same(problems, [], 'no page error, console error (a CSP violation would be one) or dialog');
});

t.test('/ui behind a proxy survives a replica switch: every event once', async (t) => {
  const env = { PGFEED_RETRY_MS: '100' };
  const [a, b] = await Promise.all([startDaemon(t, db.url, env), startDaemon(t, db.url, env)]);
  const proxy = await startSwitchProxy(t, a.port);
  const browser = await launchBrowser(t);
  const page = await browser.newPage();
  await page.goto(`${proxy.base}/ui?project=switch&after=0`);
  const seqs = () => page.$$eval('#events tbody tr', (rows) => rows.map((r) => Number((r as HTMLElement).dataset.seq)).reverse());
  await emit(db.pool, 'switch', 'tick', 5);
  await waitUntil(async () => (await seqs()).length >= 5, 20_000, 'the first rows');
  // The load balancer moves to the other replica and cuts the open connections, as a failover would.
  proxy.target = b.port;
  proxy.dropAll();
  await emit(db.pool, 'switch', 'tick', 5);
  await emit(db.pool, 'switch', 'marker', 1);
  const all = await deliveryOrder(db.pool, 'switch');
  await waitUntil(async () => (await seqs()).length >= all.length, 20_000, 'every row from the other replica');
  t.same(await seqs(), all, 'every event once, in order, across the switch');
});
