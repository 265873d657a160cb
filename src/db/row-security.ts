import type pg from 'pg';
import { PgfeedError } from '../errors.js';

/** What a read of change_log runs on: the pool, or a client inside the read's transaction. */
export type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

/**
 * Where the daemon's reads of pgfeed.change_log run. With row security off
 * (the default), on the pool, bound by their own WHERE alone. On, each read
 * runs in a read-only transaction that first names, with SET LOCAL, what it
 * may see: a stream's reads one project (`pgfeed.project`), the shared
 * tail's every project (`pgfeed.all_projects`). The policies of
 * sql/005_row_security.sql then hide every other row, even from a query
 * whose WHERE is wrong. SET LOCAL ends with the transaction, so a pooled
 * connection never carries a project over to the next read.
 *
 * The value is passed as a bound parameter of set_config(), which is what
 * SET LOCAL does (SET itself takes no parameters).
 */
export class ReadScope {
  constructor(
    readonly pool: pg.Pool,
    readonly rowSecurity = false,
  ) {}

  /** fn's reads, seeing only `project`'s rows when row security is on. */
  project<T>(project: string, fn: (db: Queryable) => Promise<T>): Promise<T> {
    return this.run('pgfeed.project', project, fn);
  }

  /** The shared tail's reads, which take every project (docs/database-role.md says why). */
  allProjects<T>(fn: (db: Queryable) => Promise<T>): Promise<T> {
    return this.run('pgfeed.all_projects', 'on', fn);
  }

  private async run<T>(setting: string, value: string, fn: (db: Queryable) => Promise<T>): Promise<T> {
    if (!this.rowSecurity) return fn(this.pool);
    const client = await this.pool.connect();
    // A checked-out client has no error listener of the pool's: a backend
    // lost between two statements would otherwise crash the process. The
    // next statement fails instead, and the caller retries as for any read.
    const ignore = () => {};
    client.on('error', ignore);
    let broken: Error | undefined;
    try {
      await client.query('BEGIN READ ONLY');
      await client.query('SELECT set_config($1, $2, true)', [setting, value]);
      const out = await fn(client);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      // A connection that cannot even roll back is not given back to the pool.
      await client.query('ROLLBACK').catch((e: Error) => (broken = e));
      throw err;
    } finally {
      client.off('error', ignore);
      client.release(broken);
    }
  }
}

/**
 * Refuses a daemon whose row-security setting does not match what Postgres
 * does for its role: with the setting on and the policies not binding the
 * role, the wall would be claimed but absent; with it off and the policies
 * binding, every read would find no rows and streams would stay silent.
 */
export async function checkRowSecurity(db: Queryable, want: boolean): Promise<void> {
  const { rows } = await db.query<{ active: boolean; role: string; owner: string; owns: boolean; enabled: boolean; superuser: boolean; bypass: boolean; guc: string }>(
    // A member of the owning role counts as its owner, for policies too.
    `SELECT row_security_active('pgfeed.change_log') AS active, current_user AS role, c.relowner::regrole::text AS owner, pg_has_role(c.relowner, 'USAGE') AS owns,
            c.relrowsecurity AS enabled, r.rolsuper AS superuser, r.rolbypassrls AS bypass, current_setting('row_security') AS guc
     FROM pg_class c, pg_roles r WHERE c.oid = 'pgfeed.change_log'::regclass AND r.rolname = current_user`,
  );
  const s = rows[0];
  if (s.active === want) return;
  const see = 'see docs/database-role.md';
  if (!want) {
    throw new PgfeedError(
      'row_security_mismatch',
      `row security on pgfeed.change_log binds role ${s.role}, so this daemon's reads would see no rows; start it with PGFEED_ROW_SECURITY=true (--row-security), ` +
        `or turn row security off for the table (ALTER TABLE pgfeed.change_log DISABLE ROW LEVEL SECURITY, as ${s.owner}); ${see}`,
    );
  }
  const why = !s.enabled
    ? `row security is not enabled on pgfeed.change_log: run ALTER TABLE pgfeed.change_log ENABLE ROW LEVEL SECURITY as its owner, ${s.owner}`
    : s.superuser
      ? `role ${s.role} is a superuser, which no policy binds: serve as a role that is not`
      : s.bypass
        ? `role ${s.role} has BYPASSRLS, which no policy binds: serve as a role without it`
        : s.owns
          ? `role ${s.role} owns pgfeed.change_log (as ${s.owner}), and no policy binds a table's owner: migrate as the owner and serve as another role`
          : `the row_security setting is ${s.guc} for role ${s.role}: set it on`;
  throw new PgfeedError('row_security_mismatch', `PGFEED_ROW_SECURITY is true, but ${why}; ${see}`);
}
