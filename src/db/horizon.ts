import type pg from 'pg';

/** The backend (or prepared transaction) whose open transaction holds the xmin horizon back. */
export interface Blocker {
  readonly pid: number | null;
  readonly xid: string;
  readonly database: string | null;
  readonly application: string | null;
  readonly state: string | null;
  readonly age_ms: number;
  readonly query: string | null;
  readonly prepared_gid?: string;
}

export async function findBlocker(db: Pick<pg.Pool, 'query'>): Promise<Blocker | null> {
  const { rows } = await db.query<Blocker & { age_ms: string }>(
    `SELECT * FROM (
       SELECT pid, backend_xid::text AS xid, datname AS database, application_name AS application, state,
              (extract(epoch FROM now() - xact_start) * 1000)::bigint::text AS age_ms,
              left(query, 200) AS query, NULL::text AS prepared_gid, age(backend_xid) AS a
       FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
       UNION ALL
       SELECT NULL, transaction::text, database, NULL, 'prepared',
              (extract(epoch FROM now() - prepared) * 1000)::bigint::text, NULL, gid, age(transaction)
       FROM pg_prepared_xacts
     ) b ORDER BY a DESC LIMIT 1`,
  );
  if (!rows.length) return null;
  const { a: _a, ...b } = rows[0] as Blocker & { age_ms: string; a: unknown };
  return { ...b, age_ms: Number(b.age_ms), ...(b.prepared_gid ? {} : { prepared_gid: undefined }) };
}
