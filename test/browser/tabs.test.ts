// shareAcrossTabs in a real browser: two tabs of one origin hold exactly one
// stream to the daemon, both see every event exactly once, and closing the
// leader tab loses nothing: the other takes over from its own position.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { deliveryOrder, emit } from '../helpers/change-log.js';
import { launchBrowser } from '../helpers/browser.js';
import { startDaemon } from '../helpers/daemon.js';
import { getJson } from '../helpers/sse-client.js';
import { waitUntil } from '../helpers/wait.js';

const db = await testDatabase(t);
const root = fileURLToPath(new URL('../..', import.meta.url));

t.test('two tabs, one stream; the leader closes and nothing is lost', async (t) => {
  const d = await startDaemon(t, db.url);
  const client = (await build({ entryPoints: ['src/client/index.ts'], absWorkingDir: root, bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent' })).outputFiles[0].text;
  const page = `<!doctype html><script type="module">
    import { connect } from '/tabs/client.js';
    window.seqs = [];
    window.feed = connect({ url: location.origin, project: 'tabs', after: 0, shareAcrossTabs: true, backoff: { baseMs: 50, capMs: 200 } });
    window.feed.on('event', (e) => window.seqs.push(e.seq));
  </script>`;
  const browser = await launchBrowser(t);
  const context = await browser.newContext();
  // Pages on the daemon's own origin, as an application's would be: locks and channels are per origin.
  await context.route(`${d.base}/tabs/**`, (route) =>
    route.fulfill(route.request().url().endsWith('client.js') ? { contentType: 'text/javascript', body: client } : { contentType: 'text/html', body: page }),
  );
  const [one, two] = [await context.newPage(), await context.newPage()];
  const problems: string[] = [];
  for (const p of [one, two]) p.on('pageerror', (e) => problems.push(e.message));
  await one.goto(`${d.base}/tabs/one`);
  await two.goto(`${d.base}/tabs/two`);
  const seqsOf = (p: typeof one) => p.evaluate(() => (window as unknown as { seqs: number[] }).seqs);
  const streams = async () => (await getJson(`${d.base}/readyz`)).body.streams as number;

  await emit(db.pool, 'tabs', 'tick', 10);
  let all = await deliveryOrder(db.pool, 'tabs');
  await waitUntil(async () => (await seqsOf(one)).length >= all.length && (await seqsOf(two)).length >= all.length, 20_000, 'both tabs to see the first 10');
  const connections = await streams();
  t.equal(connections, 1, `two tabs hold ${connections} stream to the daemon`);
  t.same(await seqsOf(one), all, 'the first tab: every event once, in order');
  t.same(await seqsOf(two), all, 'the second tab: every event once, in order');

  // A third tab opens late, from 0: it reads what it missed itself, then follows the leader's stream.
  const three = await context.newPage();
  three.on('pageerror', (e) => problems.push(e.message));
  await three.goto(`${d.base}/tabs/three`);
  await waitUntil(async () => (await seqsOf(three)).length >= all.length, 20_000, 'the late tab to catch up');
  t.same(await seqsOf(three), all, 'the late tab: every earlier event once, in order');
  t.equal(await streams(), 1, 'and still one stream for three tabs');

  // The leader (the first tab, which took the lock first) closes.
  await one.close();
  await emit(db.pool, 'tabs', 'tick', 10);
  await emit(db.pool, 'tabs', 'marker', 1);
  all = await deliveryOrder(db.pool, 'tabs');
  await waitUntil(async () => (await seqsOf(two)).length >= all.length && (await seqsOf(three)).length >= all.length, 20_000, 'the other tabs to see every event');
  t.same(await seqsOf(two), all, 'after the leader closed, the second tab: every event once, in order');
  t.same(await seqsOf(three), all, 'and the third');
  await waitUntil(async () => (await streams()) === 1, 10_000, 'one stream, now held by the second tab');
  t.equal(await streams(), 1, 'still one stream');
  t.same(problems, []);
  t.comment(`shared-tab connection count: ${connections} stream for 2 tabs`);
});
