-- pgfeed 003: retention, and time-based replay.
--
-- Retention removes a prefix of the delivery order, (xid, seq), in small
-- batched deletes (docs/retention.md has the measurements that chose them
-- over time partitions). Each step is its own transaction: it deletes up to
-- `step` rows and moves the pruned mark in the same commit, so a reader that
-- sees the deletion also sees the mark, in the same snapshot.

-- The rules and how far pruning got. One row, like pgfeed.settings, but kept
-- apart from it: the triggers read settings on every statement, and this row
-- changes at every step.
-- - max_age: prune events older than this (by created_at); NULL: no age rule.
-- - max_rows: prune events once this many seqs have been drawn after theirs;
--   NULL: no row rule. Either rule is enough to prune an event.
-- - (pruned_xid, pruned_seq): the last pruned position in delivery order.
--   Every row at or below it is gone, in every project.
CREATE TABLE pgfeed.retention (
  id         boolean  PRIMARY KEY DEFAULT true CHECK (id),
  max_age    interval CHECK (max_age > interval '0'),
  max_rows   bigint   CHECK (max_rows > 0),
  pruned_xid xid8     NOT NULL DEFAULT '0',
  pruned_seq bigint   NOT NULL DEFAULT 0
);
INSERT INTO pgfeed.retention DEFAULT VALUES;

-- Per project, the last pruned position of that project and the latest
-- created_at pruned from it. A read for one project compares its position
-- with its project's mark only, so pruning another project's rows never
-- resets it; since= is refused once a transaction that began at or after it
-- lost rows.
CREATE TABLE pgfeed.pruned (
  project text        PRIMARY KEY,
  xid     xid8        NOT NULL,
  seq     bigint      NOT NULL,
  max_at  timestamptz NOT NULL
);

-- since=<time>: the first event, by created_at, at or after a time, found by
-- one index lookup. On a large log, build it beforehand without blocking
-- writers (CREATE INDEX CONCURRENTLY change_log_created_at ON
-- pgfeed.change_log (created_at)): this statement then finds it and skips.
CREATE INDEX IF NOT EXISTS change_log_created_at ON pgfeed.change_log (created_at);

-- One step of pruning: up to `step` rows, the oldest in delivery order, all
-- below the xmin horizon, stopping at the first row the rules keep. Returns
-- the rows removed (0: nothing to do), or NULL when another session is
-- pruning (the advisory lock is per step, so one replica at a time prunes,
-- and a step cut off by a crash rolls back whole).
-- It runs as the log's owner (SECURITY DEFINER, with a search_path of its
-- own), so that a daemon role that may only read the log can prune it, and
-- row-level security, which binds that role's reads to one project, does not
-- silently shrink its DELETE to nothing. Only roles granted EXECUTE may call
-- it (docs/database-role.md).
CREATE FUNCTION pgfeed.prune(step integer DEFAULT 5000) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r       pgfeed.retention;
  cutoff  timestamptz;
  keep_at bigint;
  horizon xid8 := pg_snapshot_xmin(pg_current_snapshot());
  removed bigint;
BEGIN
  IF step IS NULL OR step < 1 THEN
    RAISE EXCEPTION 'pgfeed.prune: step must be a positive number of rows' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF NOT pg_try_advisory_xact_lock(1885824613, 1) THEN  -- "pgfe", 1: pruning
    RETURN NULL;
  END IF;
  SELECT * INTO r FROM pgfeed.retention;
  IF r.max_age IS NULL AND r.max_rows IS NULL THEN
    RETURN 0;
  END IF;
  cutoff := now() - r.max_age;
  -- Seqs drawn, not rows counted: a count would read the whole index.
  SELECT last_value - r.max_rows INTO keep_at FROM pgfeed.change_log_seq_seq;
  WITH next AS (
    SELECT c.seq, c.xid, c.project, c.created_at,
           -- Running AND: true up to the first row a rule keeps, false from it on.
           bool_and(coalesce(c.created_at < cutoff, false) OR coalesce(c.seq <= keep_at, false))
             OVER (ORDER BY c.xid, c.seq) AS prunable
    FROM (
      SELECT c.seq, c.xid, c.project, c.created_at FROM pgfeed.change_log c
      WHERE (c.xid, c.seq) > (r.pruned_xid, r.pruned_seq)
        AND c.xid < horizon
      ORDER BY c.xid, c.seq LIMIT step
    ) c
  ), gone AS (
    DELETE FROM pgfeed.change_log c USING next n
    WHERE c.seq = n.seq AND n.prunable
    RETURNING c.seq, c.xid, c.project, c.created_at
  ), last AS (
    SELECT g.xid, g.seq FROM gone g ORDER BY g.xid DESC, g.seq DESC LIMIT 1
  ), marked AS (
    UPDATE pgfeed.retention t SET pruned_xid = l.xid, pruned_seq = l.seq FROM last l RETURNING 1
  ), per_project AS (
    INSERT INTO pgfeed.pruned (project, xid, seq, max_at)
    SELECT DISTINCT ON (g.project) g.project, g.xid, g.seq, max(g.created_at) OVER (PARTITION BY g.project)
    FROM gone g ORDER BY g.project, g.xid DESC, g.seq DESC
    ON CONFLICT (project) DO UPDATE
      SET xid = excluded.xid, seq = excluded.seq, max_at = greatest(pgfeed.pruned.max_at, excluded.max_at)
    RETURNING 1
  ), through AS (
    UPDATE pgfeed.settings s SET pruned_through = greatest(s.pruned_through, m.top)
    FROM (SELECT max(g.seq) AS top FROM gone g) m WHERE m.top IS NOT NULL
    RETURNING 1
  )
  -- Every data-modifying CTE runs to completion, read or not.
  SELECT count(*) INTO removed FROM gone;
  RETURN removed;
END $$;

REVOKE EXECUTE ON FUNCTION pgfeed.prune(integer) FROM PUBLIC;

-- A whole pass by hand: steps until nothing is left to prune, each committed
-- on its own, so the pass never holds the horizon back for longer than a step.
-- CALL it outside a transaction block: it commits between steps.
CREATE PROCEDURE pgfeed.prune_all(step integer DEFAULT 5000, INOUT removed bigint DEFAULT 0)
LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  removed := 0;
  LOOP
    n := pgfeed.prune(step);
    COMMIT;
    EXIT WHEN n IS NULL OR n = 0;
    removed := removed + n;
  END LOOP;
END $$;
