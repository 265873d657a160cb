import type pg from 'pg';

type Queryable = Pick<pg.Pool | pg.Client, 'query'>;

/** The retention rules in pgfeed.retention, which pgfeed.prune() reads. null: no such rule. */
export interface RetentionRules {
  /** Seconds. */
  readonly maxAgeS: number | null;
  readonly maxRows: number | null;
}

export async function readRetention(db: Queryable): Promise<RetentionRules> {
  const { rows } = await db.query<{ age: number | null; rows: string | null }>(
    'SELECT extract(epoch FROM max_age)::float8 AS age, max_rows::text AS rows FROM pgfeed.retention',
  );
  return { maxAgeS: rows[0].age, maxRows: rows[0].rows === null ? null : Number(rows[0].rows) };
}

/** Writes the rules given (undefined: left as it is). */
export async function writeRetention(db: Queryable, rules: { readonly maxAgeS?: number | null; readonly maxRows?: number | null }): Promise<void> {
  await db.query(
    `UPDATE pgfeed.retention SET
       max_age = CASE WHEN $1 THEN make_interval(secs => $2::float8) ELSE max_age END,
       max_rows = CASE WHEN $3 THEN $4::bigint ELSE max_rows END`,
    [rules.maxAgeS !== undefined, rules.maxAgeS ?? null, rules.maxRows !== undefined, rules.maxRows ?? null],
  );
}

/** One pruning step: the rows removed, or null when another session holds the pruning lock. */
export async function pruneStep(db: Queryable, stepRows: number): Promise<number | null> {
  const { rows } = await db.query<{ n: string | null }>('SELECT pgfeed.prune($1) AS n', [stepRows]);
  return rows[0].n === null ? null : Number(rows[0].n);
}
