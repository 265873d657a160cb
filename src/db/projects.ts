import type { Queryable } from './row-security.js';

/**
 * The projects that have events, in name order, at most `limit` of them.
 * A loose index scan on change_log_project_xid_seq: one index probe per
 * project, never a read of every row (SELECT DISTINCT would be one).
 */
export async function listProjects(pool: Queryable, limit: number): Promise<string[]> {
  const { rows } = await pool.query<{ project: string }>(
    `WITH RECURSIVE p(project, n) AS (
       (SELECT project, 1 FROM pgfeed.change_log ORDER BY project LIMIT 1)
       UNION ALL
       SELECT (SELECT c.project FROM pgfeed.change_log c WHERE c.project > p.project ORDER BY c.project LIMIT 1), p.n + 1
       FROM p WHERE p.project IS NOT NULL AND p.n < $1
     )
     SELECT project FROM p WHERE project IS NOT NULL`,
    [limit],
  );
  return rows.map((r) => r.project);
}
