// Login roles for tests of privileges. Roles are cluster-wide, and every test
// file shares one cluster: each role gets a random suffix of its own, and is
// dropped (with what it owns and was granted) when the file ends.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { readState } from '../harness/state.js';

export const ROLE_PASSWORD = 'change-me';

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** `url` with another user (its password ROLE_PASSWORD) and/or database. */
export function urlAs(url: string, user: string | null, database?: string): string {
  const u = new URL(url);
  if (user) [u.username, u.password] = [user, ROLE_PASSWORD];
  if (database) u.pathname = `/${database}`;
  return u.href;
}

/** Runs `sql` (one or more statements) on a connection of its own; one result per statement. */
export async function runAs(url: string, sql: string, values?: unknown[]): Promise<pg.QueryResult[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return ([] as pg.QueryResult[]).concat(await c.query(sql, values));
  } finally {
    await c.end();
  }
}

/**
 * A name with this file's suffix for each of `names`: `{ reader: 'reader_1a2b3c4d' }`.
 * The roles are not created (a test may create them as its documentation
 * says); whichever exist at the end are dropped, after `databases` (which
 * hold their grants) are dropped.
 */
export function scratchRoles<N extends string>(t: Teardown, names: readonly N[], databases: () => readonly string[] = () => []): Record<N, string> {
  const suffix = randomBytes(4).toString('hex');
  const out = Object.fromEntries(names.map((n) => [n, `${n}_${suffix}`])) as Record<N, string>;
  t.teardown(async () => {
    const { adminUrl } = readState();
    for (const d of databases()) await runAs(adminUrl, `DROP DATABASE IF EXISTS ${d} WITH (FORCE)`);
    for (const role of Object.values<string>(out)) await runAs(adminUrl, `DROP ROLE IF EXISTS ${role}`);
  });
  return out;
}
