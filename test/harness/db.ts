// One fresh database per test file, cloned from the migrated template.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { readState, withDatabase } from './state.js';

export interface TestDatabase {
  readonly url: string;
  readonly name: string;
  readonly pool: pg.Pool;
  /** A dedicated connection, released afterwards. */
  withClient<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  /** fn inside BEGIN/COMMIT; rolled back if it throws. */
  withTransaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

export async function testDatabase(t: Teardown, opts: { poolSize?: number } = {}): Promise<TestDatabase> {
  const state = readState();
  const name = `pgfeed_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: state.adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name} TEMPLATE ${state.template}`);
  await admin.end();
  const url = withDatabase(state.adminUrl, name);
  const pool = new pg.Pool({ connectionString: url, max: opts.poolSize ?? 20 });
  // A terminated backend (some tests do that on purpose) must not crash the file.
  pool.on('error', () => {});
  let closed = false;
  const db: TestDatabase = {
    url,
    name,
    pool,
    async withClient(fn) {
      const c = await pool.connect();
      try {
        return await fn(c);
      } finally {
        c.release();
      }
    },
    async withTransaction(fn) {
      return db.withClient(async (c) => {
        await c.query('BEGIN');
        try {
          const r = await fn(c);
          await c.query('COMMIT');
          return r;
        } catch (err) {
          await c.query('ROLLBACK').catch(() => {});
          throw err;
        }
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
      const a = new pg.Client({ connectionString: state.adminUrl });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.end();
    },
  };
  t.teardown(() => db.close());
  return db;
}

/** A database with nothing in it, not even pgfeed's schema; dropped afterwards. */
export async function emptyDatabase(t: Teardown): Promise<string> {
  const state = readState();
  const name = `pgfeed_e_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: state.adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  t.teardown(async () => {
    const a = new pg.Client({ connectionString: state.adminUrl });
    await a.connect();
    await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await a.end();
  });
  return withDatabase(state.adminUrl, name);
}
