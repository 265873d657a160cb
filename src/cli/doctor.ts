import type pg from 'pg';
import { diagnose, type Check } from '../db/diagnose.js';
import { defineCommand } from './command.js';
import { connect, needDatabase, whereTo } from './database.js';

/** Long enough for a loaded server, short enough for a monitoring probe. */
const NOTIFY_TIMEOUT_MS = 2_000;
/** No check may hang the command: each query gets this long (client-side: a pooler may refuse a statement_timeout start-up parameter). */
const QUERY_TIMEOUT_MS = 10_000;

function human(checks: readonly Check[]): string {
  const failed = checks.filter((c) => !c.ok).length;
  const lines = checks.flatMap((c) => [`${c.ok ? '✓' : '✗'} ${c.check}: ${c.detail}`, ...(c.fix ? [`    fix: ${c.fix}`] : [])]);
  lines.push(failed ? `${failed} of ${checks.length} checks failed` : `all ${checks.length} checks passed`);
  return lines.join('\n');
}

export const doctorCommand = defineCommand(
  {
    name: 'doctor',
    summary: 'check the database and explain what to fix; exit 0 when all is well, 1 otherwise',
    about:
      'It checks the server version (xid8), wal_level, max_connections against the pool plus LISTEN, that LISTEN/NOTIFY works (no transaction-pooling PgBouncer), the NOTIFY queue, the xmin horizon and the backend holding it, change_log and retention, the indexes and triggers of tracked tables, and the migration level. It changes nothing.',
    settings: ['databaseUrl', 'poolSize', 'horizonStallMs'],
    prints: true,
    examples: ['pgfeed doctor', 'pgfeed doctor --json | jq \'.[] | select(.ok | not)\'', 'pgfeed doctor --pool-size 16 --horizon-stall-ms 5000'],
  },
  async ({ config, print }) => {
    const url = needDatabase('doctor', config.databaseUrl);
    const open = () => connect('doctor', url, { query_timeout: QUERY_TIMEOUT_MS });
    let db: pg.Client;
    const checks: Check[] = [];
    try {
      db = await open();
    } catch (err) {
      checks.push({ check: 'connection', ok: false, detail: (err as Error).message, fix: 'check DATABASE_URL, and that the server accepts connections from here (listen_addresses, pg_hba.conf)' });
      print(checks, () => human(checks));
      return 1;
    }
    try {
      const { rows } = await db.query<{ user: string }>('SELECT current_user AS user');
      checks.push({ check: 'connection', ok: true, detail: `${whereTo(url)} as ${rows[0].user}`, fix: null });
      checks.push(...(await diagnose(db, { poolSize: config.poolSize, horizonStallMs: config.horizonStallMs, notifyTimeoutMs: NOTIFY_TIMEOUT_MS, open })));
    } finally {
      await db.end().catch(() => {});
    }
    print(checks, () => human(checks));
    return checks.every((c) => c.ok) ? 0 : 1;
  },
);
