import type pg from 'pg';

type Queryable = Pick<pg.Pool | pg.Client, 'query'>;

/** A row of pgfeed.tracked: a table under capture and where its rows' project comes from. */
export interface TrackedTable {
  /** Schema-qualified, quoted where needed (`public.orders`, `sales."Order Lines"`), as change_log.tbl names it. */
  readonly table: string;
  /** Its events are `<type_prefix>.<op>`. */
  readonly type_prefix: string;
  /** Exactly one of project_column and project is set. */
  readonly project_column: string | null;
  readonly project: string | null;
}

/** Where the project of a tracked table's rows comes from: a column of each row, or one constant. */
export type ProjectSource = { readonly column: string } | { readonly project: string };

/** Also the table's oid, and whether it still exists (pgfeed.tracked does not depend on it, so a dropped table leaves its row). */
export interface TrackedRow extends TrackedTable {
  readonly oid: number;
  readonly exists: boolean;
}

const SELECT_TRACKED = `
  SELECT coalesce(quote_ident(n.nspname) || '.' || quote_ident(c.relname), t.tbl::oid::text) AS table,
         t.type_prefix, t.project_column, t.project, t.tbl::oid::int AS oid, c.oid IS NOT NULL AS exists
  FROM pgfeed.tracked t
  LEFT JOIN pg_class c ON c.oid = t.tbl
  LEFT JOIN pg_namespace n ON n.oid = c.relnamespace`;

export async function listTracked(db: Queryable): Promise<TrackedRow[]> {
  return (await db.query<TrackedRow>(`${SELECT_TRACKED} ORDER BY 1`)).rows;
}

/** A table as it is tracked now; `table` is any name Postgres resolves (`orders`, `public.orders`). */
async function trackedAs(db: Queryable, table: string): Promise<TrackedTable | null> {
  const { rows } = await db.query<TrackedRow>(`${SELECT_TRACKED} WHERE t.tbl = $1::regclass`, [table]);
  return rows.length ? publicRow(rows[0]) : null;
}

export function publicRow({ table, type_prefix, project_column, project }: TrackedRow): TrackedTable {
  return { table, type_prefix, project_column, project };
}

/** pgfeed.track(); its errors (an unknown table or column, a view, a reserved name) carry a message and a HINT. */
export async function track(db: Queryable, table: string, source: ProjectSource): Promise<TrackedTable> {
  const [column, project] = 'column' in source ? [source.column, null] : [null, source.project];
  await db.query('SELECT pgfeed.track($1::regclass, $2::name, $3::text)', [table, column, project]);
  return (await trackedAs(db, table))!;
}

/** pgfeed.untrack(); returns how the table was tracked, or null when it was not. */
export async function untrack(db: pg.Client, table: string): Promise<TrackedTable | null> {
  await db.query('BEGIN');
  try {
    const was = await trackedAs(db, table);
    await db.query('SELECT pgfeed.untrack($1::regclass)', [table]);
    await db.query('COMMIT');
    return was;
  } catch (err) {
    await db.query('ROLLBACK').catch(() => {});
    throw err;
  }
}
