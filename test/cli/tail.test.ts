// pgfeed tail against the real daemon process: JSON lines when stdout is not
// a terminal; a tail stopped and started again with --cursor-file prints the
// exact sequence, gap-free and without a duplicate; a daemon killed and
// restarted mid-tail is resumed from; bad arguments are one line and exit 2.
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { ChangeEvent } from '../../src/client/index.js';
import { testDatabase } from '../harness/db.js';
import { deliveryOrder, emit } from '../helpers/change-log.js';
import { oneLineError, runCli, startCli, type RunningCli } from '../helpers/cli.js';
import { startDaemon } from '../helpers/daemon.js';
import { freeLowPort } from '../helpers/free-port.js';
import { sleep, waitUntil } from '../helpers/wait.js';

const db = await testDatabase(t);
const dir = mkdtempSync(join(tmpdir(), 'pgfeed-tail-'));
const seqsOf = (tail: RunningCli) => tail.lines.map((l) => (JSON.parse(l) as ChangeEvent).seq);
const printed = (tail: RunningCli, n: number, what: string) =>
  waitUntil(() => tail.lines.length >= n, 30_000, `${what} (have ${tail.lines.length}; stderr ${tail.stderr})`);

/** Writes events one commit each until stopped, as a busy application would while tails come and go. */
function writer(project: string) {
  let running = true;
  let written = 0;
  const done = (async () => {
    while (running) {
      await emit(db.pool, project, 'tick', 1);
      written++;
      await sleep(5);
    }
  })();
  return {
    get written() { return written; },
    stop: async () => {
      running = false;
      await done;
    },
  };
}

t.test('JSON lines: each event as the stream has it, in delivery order', async (t) => {
  const d = await startDaemon(t, db.url);
  await emit(db.pool, 'lines', 'orders.insert', 3);
  await emit(db.pool, 'lines', 'other', 2);
  const tail = startCli(t, ['tail', '--project', 'lines', '--types', 'orders.*'], { PGFEED_URL: d.base });
  await emit(db.pool, 'lines', 'orders.insert', 1); // the marker, after the ones --types leaves out
  await printed(tail, 4, 'the 4 orders events');
  const events = tail.lines.map((l) => JSON.parse(l) as ChangeEvent);
  t.same(events.map((e) => e.type), ['orders.insert', 'orders.insert', 'orders.insert', 'orders.insert'], '--types left the others out');
  const { rows } = await db.pool.query<{ seq: string }>("SELECT seq FROM pgfeed.change_log WHERE project = 'lines' AND type = 'orders.insert' ORDER BY xid, seq");
  t.same(events.map((e) => e.seq), rows.map((r) => Number(r.seq)), 'in delivery order');
  t.match(events[0], { project: 'lines', op: null, table: null, data: { i: 0 } }, 'the whole event');
  t.equal(await tail.stop('SIGTERM'), 0, 'SIGTERM ends it with status 0');
});

t.test('--cursor-file: stopped and started again, the tail prints every event once', async (t) => {
  const d = await startDaemon(t, db.url);
  const cursor = join(dir, 'restart.cursor');
  const args = ['tail', '--project', 'restart', '--url', d.base, '--cursor-file', cursor];
  const w = writer('restart');
  const runs: number[][] = [];
  // Three tails in turn, each stopped mid-stream while the writer goes on, by SIGTERM and by SIGINT.
  for (const signal of ['SIGTERM', 'SIGINT', null] as const) {
    const tail = startCli(t, args);
    if (signal === null) {
      await w.stop();
      await emit(db.pool, 'restart', 'marker', 1);
      const all = await deliveryOrder(db.pool, 'restart');
      const before = runs.flat().length;
      await printed(tail, all.length - before, 'the last tail to reach the marker');
      runs.push(seqsOf(tail));
      await tail.stop();
      break;
    }
    await printed(tail, 15, `the tail before its ${signal}`);
    t.equal(await tail.stop(signal), 0, `${signal} ends it with status 0`);
    runs.push(seqsOf(tail));
    t.equal(readFileSync(cursor, 'utf8'), `${runs.at(-1)!.at(-1)}\n`, 'the file holds the last event printed');
  }
  t.ok(runs.every((r) => r.length > 0), `each tail printed events (${runs.map((r) => r.length).join(', ')})`);
  t.same(runs.flat(), await deliveryOrder(db.pool, 'restart'), 'together: every event exactly once, in order');
  t.same(readdirSync(dir).filter((f) => f.startsWith('restart.cursor')), ['restart.cursor'], 'no temporary file is left behind');
});

t.test('a daemon killed and restarted mid-tail: the tail resumes, nothing lost or repeated', async (t) => {
  // A fixed port below the ephemeral range, so the new daemon can take it again.
  const port = await freeLowPort();
  const env = { PGFEED_PORT: String(port), PGFEED_RETRY_MS: '100' };
  const a = await startDaemon(t, db.url, env);
  const tail = startCli(t, ['tail', '--project', 'crash', '--json'], { PGFEED_URL: a.base });
  const w = writer('crash');
  await printed(tail, 20, 'events from the first daemon');
  t.equal(await a.stop('SIGKILL'), null, 'the first daemon was killed');
  await sleep(300); // the writer goes on while no daemon is up
  const b = await startDaemon(t, db.url, env);
  await waitUntil(async () => (await fetch(`${b.base}/readyz`).then((r) => r.json() as Promise<{ streams: number }>)).streams === 1, 30_000, 'the tail to reconnect');
  await w.stop();
  await emit(db.pool, 'crash', 'marker', 1);
  const all = await deliveryOrder(db.pool, 'crash');
  await printed(tail, all.length, 'every event, the marker last');
  t.same(seqsOf(tail), all, 'every event exactly once, in order, across the crash');
  t.match(tail.stderr, /reconnecting in/, 'it said on stderr that it reconnects');
  t.equal(await tail.stop(), 0);
});

t.test('bad arguments: one line and exit 2, before or when the daemon refuses them', async (t) => {
  const d = await startDaemon(t, db.url);
  const env = { PGFEED_URL: d.base };
  oneLineError(t, await runCli(['tail'], env), 2, /pgfeed tail needs --project P/);
  oneLineError(t, await runCli(['tail', '--project', 'x', '--after', 'yesterday'], env), 2, /after must be 0, 'now', or the seq/);
  oneLineError(t, await runCli(['tail', '--project', 'x', '--since', 'last tuesday'], env), 2, /since must be an RFC 3339 time/);
  oneLineError(t, await runCli(['tail', '--project', 'x', '--after', '3', '--since', '2026-12-01T00:00:00Z'], env), 2, /give after or since, not both/);
  oneLineError(t, await runCli(['tail', '--project', 'x', '--url', 'localhost:8787'], env), 2, /url must be http: or https:/);
  oneLineError(t, await runCli(['tail', '--project', 'x', '--bogus'], env), 2, /unknown option --bogus; see pgfeed tail --help/);
  oneLineError(t, await runCli(['tail', '--project'], env), 2, /--project needs a value/);
  const junk = join(dir, 'junk.cursor');
  writeFileSync(junk, 'not a seq\n');
  oneLineError(t, await runCli(['tail', '--project', 'x', '--cursor-file', junk], env), 2, /the cursor file .* holds "not a seq", not the seq of an event/);
  // Refused by the daemon: its code's message, once, never retried.
  oneLineError(t, await runCli(['tail', '--project', 'x', '--types', 'no spaces'], env), 2, /type/i);
  oneLineError(t, await runCli(['tail', '--project', 'x'], { PGFEED_URL: d.base, PGFEED_TYPO: '1' }), 2, /unknown setting PGFEED_TYPO/);
  t.notOk(existsSync(join(dir, 'x.cursor')), 'no cursor file appeared');
});

t.test('a pruned cursor ends the tail with status 1 and the daemon\'s reason', async (t) => {
  const d = await startDaemon(t, db.url);
  const seqs = await emit(db.pool, 'pruned', 'tick', 4);
  const cursor = join(dir, 'pruned.cursor');
  writeFileSync(cursor, `${seqs[0]}\n`);
  await db.pool.query('UPDATE pgfeed.settings SET pruned_through = $1', [seqs[1]]);
  await db.pool.query('DELETE FROM pgfeed.change_log WHERE seq <= $1', [seqs[1]]);
  oneLineError(t, await runCli(['tail', '--project', 'pruned', '--cursor-file', cursor], { PGFEED_URL: d.base }), 1, /older than the retained history.*begins at seq \d+: to go on from there, remove .*pruned\.cursor/);
  t.equal(readFileSync(cursor, 'utf8'), `${seqs[0]}\n`, 'the cursor file is left as it was');
});
