// retention: what pruning costs the writers and the readers.
//
//  1. strategies: the two ways to remove old history, on the same log
//     (STRATEGY_ROWS rows in 8 xid ranges), with 4 writers inserting all
//     along and a reader that holds a snapshot for 300 ms, as a catch-up read
//     on a busy server does:
//       partitions  a log partitioned by xid range; DROP the oldest 6 of 8
//       deletes     pgfeed's batched deletes (5,000 rows a step) of the same rows
//     It reports the time each took, the writers' longest commit, the disk
//     freed at once, and the first read's time after the removal.
//  2. load: pgfeed's own pruner removes ROWS backdated rows while 16 writers
//     commit as fast as they can (one row a transaction) and 1,000 streams
//     read. Writer throughput, p99 and longest commit during the prune
//     against a window of the same length without it; prune rate; reader p99;
//     and, sampled every 5 ms, whether any writer waits for a lock.
//
//   npm run bench:retention [-- --rows 1000000 --strategy-rows 400000 --streams 1000 --writers 16 --window-s 20]
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import pg from 'pg';
import { BenchDb } from './lib/bench-db.js';
import { LoadGenerator } from './lib/load-generator.js';
import { PAYLOAD } from './lib/sample-row.js';
import { ServerProcess } from './lib/server-process.js';
import { round } from './lib/summary.js';
import { sleep, waitUntil } from '../test/helpers/wait.js';

const { values: opt } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    'strategy-rows': { type: 'string', default: '400000' },
    streams: { type: 'string', default: '1000' },
    writers: { type: 'string', default: '16' },
    'window-s': { type: 'string', default: '20' },
  },
});
const ROWS = Number(opt.rows);
const STRATEGY_ROWS = Number(opt['strategy-rows']);
const STREAMS = Number(opt.streams);
const WRITERS = Number(opt.writers);
const WINDOW_MS = Number(opt['window-s']) * 1000;
const PROJECTS = 100;
const STEP = 5_000;

const histogram = () => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });

/** Closed-loop writers: each commits one row per transaction as fast as it can; commit latency in µs. */
class Writers {
  private clients: pg.Client[] = [];
  private running = false;
  private loops: Promise<void>[] = [];
  h = histogram();
  committed = 0;

  constructor(
    private readonly url: string,
    private readonly n: number,
    private readonly insert: string,
    private readonly params: (i: number) => unknown[],
  ) {}

  async start(): Promise<void> {
    for (let i = 0; i < this.n; i++) {
      const c = new pg.Client({ connectionString: this.url, application_name: 'bench:writer' });
      await c.connect();
      this.clients.push(c);
    }
    this.running = true;
    this.loops = this.clients.map(async (c, w) => {
      for (let i = w; this.running; i += this.n) {
        const t0 = performance.now();
        await c.query(this.insert, this.params(i));
        this.h.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
        this.committed++;
      }
    });
  }

  /** Starts a measured window: the histogram and the count from now. */
  window(): { stop: () => { per_s: number; p50_ms: number; p99_ms: number; max_ms: number } } {
    this.h = histogram();
    const c0 = this.committed;
    const t0 = performance.now();
    return {
      stop: () => {
        const s = (performance.now() - t0) / 1000;
        const h = this.h;
        return { per_s: Math.round((this.committed - c0) / s), p50_ms: round(h.getValueAtPercentile(50) / 1000), p99_ms: round(h.getValueAtPercentile(99) / 1000), max_ms: round(h.maxValue / 1000) };
      },
    };
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    await Promise.all(this.clients.map((c) => c.end()));
  }
}

async function sizes(c: pg.Client, rel: string): Promise<{ table_mb: number; indexes_mb: number }> {
  const { rows } = await c.query(`SELECT coalesce(sum(pg_table_size(r)), 0)::float8 / 1e6 AS t, coalesce(sum(pg_indexes_size(r)), 0)::float8 / 1e6 AS i
    FROM (SELECT $1::regclass AS r UNION ALL SELECT inhrelid FROM pg_inherits WHERE inhparent = $1::regclass) x`, [rel]);
  return { table_mb: round(rows[0].t), indexes_mb: round(rows[0].i) };
}

/** A reader holding a snapshot on `rel` for `ms`, as a long catch-up read does; DDL on rel must wait for it. */
async function heldReader(url: string, rel: string, ms: number): Promise<() => Promise<void>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
  await c.query(`SELECT 1 FROM ${rel} LIMIT 1`);
  const done = sleep(ms).then(async () => {
    await c.query('COMMIT');
    await c.end();
  });
  return () => done;
}

/** The first catch-up batch from the start of what is retained, in ms (median of 5). */
async function firstBatchMs(c: pg.Client, rel: string, after: { xid: string; seq: string }): Promise<number> {
  const t: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await c.query(`SELECT * FROM ${rel} WHERE (xid, seq) > ($1::xid8, $2::bigint) ORDER BY xid, seq LIMIT 512`, [after.xid, after.seq]);
    t.push(performance.now() - t0);
  }
  return round(t.sort((a, b) => a - b)[2]);
}

async function strategies(db: BenchDb): Promise<Record<string, unknown>> {
  const d = await db.fresh();
  const c = new pg.Client({ connectionString: d.url });
  await c.connect();
  const xids = STRATEGY_ROWS / 100;
  const perRange = xids / 8;
  // Explicit xids, 100 rows a transaction, so the partitioned table can be
  // filled in xid ranges known in advance; the plain one gets the same rows.
  await c.query(`CREATE SCHEMA b;
    CREATE TABLE b.part (seq bigint NOT NULL, xid xid8 NOT NULL, project text NOT NULL, type text NOT NULL, data jsonb, created_at timestamptz NOT NULL DEFAULT now()) PARTITION BY RANGE (xid);
    CREATE TABLE b.plain (seq bigint NOT NULL, xid xid8 NOT NULL, project text NOT NULL, type text NOT NULL, data jsonb, created_at timestamptz NOT NULL DEFAULT now());
    CREATE SEQUENCE b.seq;`);
  for (let r = 0; r < 8; r++) await c.query(`CREATE TABLE b.part_${r} PARTITION OF b.part FOR VALUES FROM ('${r * perRange}') TO ('${(r + 1) * perRange}')`);
  await c.query(`CREATE TABLE b.part_rest PARTITION OF b.part FOR VALUES FROM ('${8 * perRange}') TO (MAXVALUE)`);
  for (const t of ['part', 'plain']) {
    await c.query(`CREATE INDEX ON b.${t} (xid, seq); CREATE INDEX ON b.${t} (project, xid, seq)`);
    await c.query(`INSERT INTO b.${t} SELECT g, (g / 100)::text::xid8, 'p' || (g % ${PROJECTS}), 'orders.insert', jsonb_build_object('id', g, 'payload', '${PAYLOAD}') FROM generate_series(1, ${STRATEGY_ROWS - 1}) g`);
    await c.query(`VACUUM ANALYZE b.${t}`);
  }
  await c.query(`SELECT setval('b.seq', ${STRATEGY_ROWS})`);
  const plan = (await c.query(`EXPLAIN SELECT * FROM b.part WHERE (xid, seq) > ('${perRange * 6}'::xid8, 0) ORDER BY xid, seq LIMIT 512`)).rows.map((r) => r['QUERY PLAN']).join('\n');
  // Every row of the oldest 6 ranges is at or below this position.
  const cut = { xid: String(perRange * 6 - 1), seq: String(STRATEGY_ROWS) };
  const out: Record<string, unknown> = { rows: STRATEGY_ROWS, removed: STRATEGY_ROWS * 6 / 8, plan_partitioned: plan };
  for (const t of ['partitions', 'deletes'] as const) {
    const rel = t === 'partitions' ? 'b.part' : 'b.plain';
    const before = await sizes(c, rel);
    // Writers insert into the newest xid range, as live traffic does.
    const w = new Writers(d.url, 4, `INSERT INTO ${rel} (seq, xid, project, type, data) VALUES (nextval('b.seq'), ($1::bigint)::text::xid8, 'w', 'orders.insert', '{}')`, (i) => [xids + 1 + i]);
    await w.start();
    await sleep(1_000);
    const win = w.window();
    const released = await heldReader(d.url, rel, 300);
    const t0 = performance.now();
    let steps = 0;
    if (t === 'partitions') {
      for (let r = 0; r < 6; r++) await c.query(`DROP TABLE b.part_${r}`);
    } else {
      for (;;) {
        const n = (await c.query(`DELETE FROM b.plain WHERE seq IN (SELECT seq FROM b.plain WHERE (xid, seq) <= ($1::xid8, $2::bigint) ORDER BY xid, seq LIMIT ${STEP})`, [cut.xid, cut.seq])).rowCount!;
        steps++;
        if (n < STEP) break;
      }
    }
    const tookMs = performance.now() - t0;
    await released();
    await sleep(500);
    const writers = win.stop();
    await w.stop();
    const after = await sizes(c, rel);
    const readMs = await firstBatchMs(c, rel, cut);
    await c.query(`VACUUM b.${t === 'partitions' ? 'part' : 'plain'}`);
    out[t] = { seconds: round(tookMs / 1000), steps: t === 'deletes' ? steps : undefined, writer_max_ms: writers.max_ms, writer_p99_ms: writers.p99_ms, before, after, after_vacuum: await sizes(c, rel), first_batch_ms: readMs, first_batch_after_vacuum_ms: await firstBatchMs(c, rel, cut) };
  }
  await c.end();
  await d.drop();
  return out;
}

async function load(db: BenchDb): Promise<Record<string, unknown>> {
  const d = await db.fresh();
  const c = new pg.Client({ connectionString: d.url });
  await c.connect();
  // The log to prune: ROWS events two days old, in transactions of 50,000.
  const t0 = performance.now();
  for (let done = 0; done < ROWS; done += 50_000) {
    await c.query(`INSERT INTO pgfeed.change_log (project, type, op, tbl, data, created_at)
      SELECT 'p' || (g % ${PROJECTS}), 'orders.insert', 'insert', 'public.orders', jsonb_build_object('id', g, 'project', 'p' || (g % ${PROJECTS}), 'sent_us', 0, 'payload', '${PAYLOAD}'), now() - interval '2 days'
      FROM generate_series(${done + 1}, ${Math.min(ROWS, done + 50_000)}) g`);
  }
  await c.query('VACUUM ANALYZE pgfeed.change_log');
  const fillS = (performance.now() - t0) / 1000;
  const srv = await ServerProcess.start('pgfeed', { databaseUrl: d.url, env: { PGFEED_RETENTION: 'off', PGFEED_PRUNE_INTERVAL_MS: '500' } });
  const gen = new LoadGenerator({ host: '127.0.0.1', port: srv.port, totalStreams: STREAMS });
  const w = new Writers(d.url, WRITERS, `INSERT INTO public.orders (project, sent_us, payload) VALUES ($1, (extract(epoch FROM clock_timestamp()) * 1e6)::bigint, $2)`, (i) => [`p${i % PROJECTS}`, PAYLOAD]);
  try {
    const opened = await gen.open(Array.from({ length: STREAMS }, (_, i) => ({ project: `p${i % PROJECTS}`, path: `/v1/events?project=p${i % PROJECTS}&after=now` })));
    await w.start();
    await sleep(3_000); // warm-up
    const window = async (what: () => Promise<void>) => {
      await gen.measure();
      const win = w.window();
      const s0 = performance.now();
      // Every 5 ms: is any writer waiting for a lock other than NOTIFY's
      // commit lock (wait_event "object"), which writers take from each other
      // with or without pruning? The longest run of such samples bounds a block.
      let sampling = true;
      let run = 0;
      let longestRun = 0;
      let lockSamples = 0;
      const sampler = (async () => {
        const s = new pg.Client({ connectionString: d.url });
        await s.connect();
        while (sampling) {
          const n = Number((await s.query(`SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'bench:writer' AND wait_event_type = 'Lock' AND wait_event <> 'object'`)).rows[0].n);
          run = n > 0 ? run + 1 : 0;
          if (n > 0) lockSamples++;
          longestRun = Math.max(longestRun, run);
          await sleep(5);
        }
        await s.end();
      })();
      await what();
      sampling = false;
      await sampler;
      const seconds = (performance.now() - s0) / 1000;
      const writers = win.stop();
      const h = (await gen.check({})).histogram;
      return { seconds: round(seconds), writers, writer_lock_wait_samples: lockSamples, writer_lock_wait_longest_samples: longestRun, reader_p99_ms: round(h.getValueAtPercentile(99) / 1000), reader_deliveries: h.totalCount };
    };
    const before = await window(() => sleep(WINDOW_MS));
    const pruned = async () => Number((await c.query('SELECT count(*) AS n FROM pgfeed.change_log WHERE created_at < now() - interval \'1 day\'')).rows[0].n) === 0;
    const during = await window(async () => {
      await c.query(`UPDATE pgfeed.retention SET max_age = '1 day'`);
      await waitUntil(pruned, 600_000, 'the prune', { intervalMs: 200 });
    });
    const after = await window(() => sleep(WINDOW_MS));
    const steps = await fetch(`${srv.url}/metrics`).then((r) => r.text());
    const stepMax = steps.split('\n').filter((l) => l.startsWith('pgfeed_prune_step_seconds_bucket')).map((l) => {
      const m = /le="([^"]+)"\} (\d+)/.exec(l);
      return m ? { le: m[1], n: Number(m[2]) } : null;
    }).filter(Boolean);
    return {
      rows: ROWS,
      fill_seconds: round(fillS),
      streams: opened.open,
      writers: WRITERS,
      before,
      during,
      after,
      prune_rows_per_s: Math.round(ROWS / during.seconds),
      writer_throughput_ratio: round(during.writers.per_s / ((before.writers.per_s + after.writers.per_s) / 2)),
      prune_step_buckets: stepMax,
    };
  } finally {
    await w.stop().catch(() => {});
    await gen.close();
    await srv.close();
    await c.end();
    await d.drop();
  }
}

const db = await BenchDb.start();
try {
  const out = { strategies: await strategies(db), load: await load(db) };
  console.log(JSON.stringify(out, null, 2));
} finally {
  await db.close();
}
