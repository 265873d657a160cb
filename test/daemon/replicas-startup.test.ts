// What several replicas share in the database, as opposed to what each holds:
// the schema (migrated once, whoever starts first), pgfeed.settings (checked
// by every replica, written by none of them once it exists) and pruning (one
// replica at a time, through the advisory lock pgfeed.prune() takes).
import pg from 'pg';
import t, { type Test } from 'tap';
import { emptyDatabase, testDatabase } from '../harness/db.js';
import { deliveryOrder, emit, writersOf } from '../helpers/change-log.js';
import { metric, startDaemon, type DaemonProcess } from '../helpers/daemon.js';
import { connectSse } from '../helpers/sse-client.js';
import { waitUntil } from '../helpers/wait.js';
import { loadMigrations } from '../../src/db/migrate.js';

/** Starts a daemon that may refuse to: its process, or the reason it gave. */
function tryStart(t: Test, url: string, env: Record<string, string>): Promise<{ env: Record<string, string>; up?: DaemonProcess; refused?: string }> {
  return startDaemon(t, url, env).then(
    (up) => ({ env, up }),
    (err: Error) => ({ env, refused: err.message }),
  );
}

async function query<R extends pg.QueryResultRow>(url: string, sql: string): Promise<R[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<R>(sql)).rows;
  } finally {
    await c.end();
  }
}

t.test('three daemons started at once on a fresh database: all come up, the schema is migrated once', async (t) => {
  const url = await emptyDatabase(t);
  const env = { PGFEED_CHANNEL: 'trio' };
  const started = await Promise.all([0, 1, 2].map(() => tryStart(t, url, env)));
  t.same(started.map((s) => s.refused ?? 'up'), ['up', 'up', 'up'], 'all three came up');
  const daemons = started.map((s) => s.up!);
  const applied = daemons.map((d) => d.logs.find((l) => l.msg === 'migrations applied')?.applied as string[] | undefined);
  const migrations = (await loadMigrations()).map((m) => m.name);
  t.same(applied.filter(Boolean), [migrations], 'one of them applied every migration; the others found them applied');
  const rows = await query<{ id: number }>(url, 'SELECT id FROM pgfeed.migrations ORDER BY id');
  t.same(rows.map((r) => r.id), migrations.map((m) => Number(m.slice(0, 3))), 'each migration is booked once');
  t.same(await query(url, 'SELECT channel, notify FROM pgfeed.settings'), [{ channel: 'trio', notify: true }], 'one settings row, as they are configured');
  // All three serve, and hear the writers on the channel they share.
  const streams = await Promise.all(daemons.map((d) => connectSse(`${d.base}/v1/events?project=trio&after=now`)));
  t.teardown(() => streams.forEach((s) => s.close()));
  await Promise.all(streams.map((s) => s.waitFor((c) => c.retry !== null)));
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  t.teardown(() => c.end());
  const [seq] = await emit(c, 'trio', 'e');
  for (const s of streams) await s.waitFor((c) => c.seqs.includes(seq), 10_000, 'the event');
  for (const d of daemons) t.ok((await metric(d.base, 'pgfeed_notify_wakeups_total')) > 0, 'each daemon was woken on the channel trio');
});

t.test('three daemons configured differently race on a fresh database: the settings are the first one\'s, never overwritten', async (t) => {
  const url = await emptyDatabase(t);
  const configs: Record<string, string>[] = [{ PGFEED_CHANNEL: 'alpha' }, { PGFEED_CHANNEL: 'beta', PGFEED_NOTIFY: 'false' }, { PGFEED_CHANNEL: 'alpha' }];
  const started = await Promise.all(configs.map((env) => tryStart(t, url, env)));
  const [settings] = await query<{ channel: string; notify: boolean }>(url, 'SELECT channel, notify FROM pgfeed.settings');
  const matches = (env: Record<string, string>) => settings.channel === env.PGFEED_CHANNEL && settings.notify === (env.PGFEED_NOTIFY !== 'false');
  t.ok(started.some((s) => s.up), 'at least one came up');
  for (const s of started) {
    if (s.up) t.ok(matches(s.env), `a daemon configured as ${JSON.stringify(s.env)} is up: the settings (${JSON.stringify(settings)}) are its own`);
    else {
      t.notOk(matches(s.env), `a daemon configured as ${JSON.stringify(s.env)} refused: the settings are another's`);
      t.match(s.refused, /pgfeed\.settings has channel .* but this daemon is configured with/, 'with the settings_mismatch line');
    }
  }
  // Now a fourth, configured otherwise than the running ones, refuses and changes nothing.
  const other = matches(configs[0]) ? configs[1] : configs[0];
  const fourth = await tryStart(t, url, other);
  t.ok(fourth.refused, 'a daemon configured otherwise than the running ones refuses');
  t.same(await query(url, 'SELECT channel, notify FROM pgfeed.settings'), [settings], 'and pgfeed.settings is as it was');
});

t.test('three pruning daemons: rows are pruned, and never by two replicas at once', async (t) => {
  const db = await testDatabase(t, { poolSize: 8 });
  // Every statement that deletes from change_log records whether its session
  // held the pruning lock (pgfeed.prune() takes it per step, sql/003). The
  // lock is exclusive, so deletes under it never overlap.
  await db.pool.query(`CREATE TABLE public.prune_steps (pid int, at timestamptz DEFAULT clock_timestamp(), locked boolean, rows bigint);
    CREATE FUNCTION public.record_prune_step() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO public.prune_steps (pid, locked, rows)
      SELECT pg_backend_pid(),
             EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = 1885824613 AND objid = 1 AND objsubid = 2
                     AND pid = pg_backend_pid() AND granted),
             (SELECT count(*) FROM gone);
      RETURN NULL;
    END $$;
    CREATE TRIGGER record_prune_step AFTER DELETE ON pgfeed.change_log REFERENCING OLD TABLE AS gone
      FOR EACH STATEMENT EXECUTE FUNCTION public.record_prune_step();
    GRANT INSERT ON public.prune_steps TO PUBLIC`);
  const env = { PGFEED_RETENTION_ROWS: '50', PGFEED_PRUNE_INTERVAL_MS: '100', PGFEED_PRUNE_STEP_ROWS: '7' };
  const daemons = await Promise.all([0, 1, 2].map(() => startDaemon(t, db.url, env)));
  const writers = writersOf(db.pool, 'prune', 3);
  await waitUntil(async () => Number((await db.pool.query('SELECT coalesce(sum(rows), 0) AS n FROM public.prune_steps')).rows[0].n) >= 600, 60_000, '600 rows pruned');
  const written = await writers.stop();
  // Pruning catches up with the rule: the 50 newest seqs are left.
  await waitUntil(async () => (await deliveryOrder(db.pool, 'prune')).length <= 50, 30_000, 'pruning to reach the last 50 rows');
  const steps = (await db.pool.query<{ pid: number; locked: boolean; rows: string }>('SELECT pid, locked, rows FROM public.prune_steps WHERE rows > 0 ORDER BY at')).rows;
  t.ok(steps.length > 50, `${steps.length} pruning steps deleted rows (${written} events written)`);
  t.same(steps.filter((s) => !s.locked), [], 'every one held the pruning lock while it deleted');
  // What the daemons say they pruned is what was deleted: no step counted twice, none lost.
  const deleted = steps.reduce((n, s) => n + Number(s.rows), 0);
  let pruned: number[] = [];
  const sum = async () => (pruned = await Promise.all(daemons.map((d) => metric(d.base, 'pgfeed_pruned_rows_total')))).reduce((a, b) => a + b, 0);
  await waitUntil(async () => (await sum()) >= deleted, 5_000, 'the metrics to count every step');
  t.equal(await sum(), deleted, `the replicas' pgfeed_pruned_rows_total (${pruned.join(' + ')}) add up to the ${deleted} rows deleted`);
  const left = (await deliveryOrder(db.pool, 'prune')).length;
  t.ok(left < written, `${left} of ${written} events are left`);
});
