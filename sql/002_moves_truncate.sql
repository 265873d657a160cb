-- pgfeed 002: rows that move between projects, and TRUNCATE.
--
-- - An UPDATE that changes a row's project column tells both projects: the
--   old one gets `<table>.move_out` (delete-shaped: the old row only), the
--   new one `<table>.move_in` (insert-shaped: the new row only). Neither sees
--   the other's version of the row. The two events are adjacent in the
--   statement, so they share the transaction's position in delivery order.
-- - A TRUNCATE of a tracked table writes one `<table>.truncate` event to each
--   project that had rows in it, so no subscriber keeps rows that are gone.
-- See docs/sql.md, "Rows that move" and "TRUNCATE".

-- 'truncate' joins the ops. NOT VALID: the old check was stricter, so every
-- existing row passes, and validating would scan the whole log while holding
-- the lock that the constraint change takes, blocking writers.
ALTER TABLE pgfeed.change_log DROP CONSTRAINT change_log_op_check;
ALTER TABLE pgfeed.change_log ADD CONSTRAINT change_log_op_check
  CHECK (op IN ('insert', 'update', 'delete', 'truncate')) NOT VALID;

-- TG_ARGV: [0] type prefix, [1] project column or '', [2] constant project or ''.
-- See 001 for why capture is statement-level and how the NOTIFY payload is found.
CREATE OR REPLACE FUNCTION pgfeed.capture() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  op      text := lower(TG_OP);
  tbl     text := format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME);
  pre     text := TG_ARGV[0];
  typ     text := TG_ARGV[0] || '.' || lower(TG_OP);
  pcol    text := nullif(TG_ARGV[1], '');
  pconst  text := nullif(TG_ARGV[2], '');
  written bigint;
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO pgfeed.change_log (project, type, op, tbl, data)
    SELECT coalesce(pconst, r ->> pcol, pgfeed.null_project(tbl, pcol)), typ, op, tbl, r
    FROM (SELECT to_jsonb(x.*) AS r FROM pgfeed_new x) rows;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO pgfeed.change_log (project, type, op, tbl, data)
    SELECT coalesce(pconst, r ->> pcol, pgfeed.null_project(tbl, pcol)), typ, op, tbl, r
    FROM (SELECT to_jsonb(x.*) AS r FROM pgfeed_old x) rows;
  ELSIF TG_OP = 'TRUNCATE' THEN
    -- A BEFORE trigger: TRUNCATE already holds its exclusive lock, so the
    -- rows read here are exactly the ones it removes. The project column is
    -- rendered as `to_jsonb(row) ->> column` renders it for every other event.
    IF pconst IS NOT NULL THEN
      EXECUTE format('INSERT INTO pgfeed.change_log (project, type, op, tbl, data)
                      SELECT $1, $2, $3, $4, NULL WHERE EXISTS (SELECT 1 FROM %s)', tbl)
        USING pconst, typ, op, tbl;
    ELSE
      EXECUTE format('INSERT INTO pgfeed.change_log (project, type, op, tbl, data)
                      SELECT to_jsonb(d.p) #>> ''{}'', $1, $2, $3, NULL
                      FROM (SELECT DISTINCT x.%1$I AS p FROM %2$s x WHERE x.%1$I IS NOT NULL) d
                      ORDER BY 1', pcol, tbl)
        USING typ, op, tbl;
    END IF;
  ELSIF pcol IS NULL THEN
    -- An update of a constant-project table: a row can never move.
    -- Postgres appends to the old and new transition tables in lockstep, one
    -- pair per updated row, so equal ordinals pair a row's before and after.
    INSERT INTO pgfeed.change_log (project, type, op, tbl, data)
    SELECT pconst, typ, op, tbl, jsonb_build_object('old', od.r, 'new', nw.r)
    FROM (SELECT to_jsonb(x.*) AS r, row_number() OVER () AS i FROM pgfeed_new x) nw
    JOIN (SELECT to_jsonb(x.*) AS r, row_number() OVER () AS i FROM pgfeed_old x) od USING (i);
  ELSE
    -- Each updated row gives one update to its project, or, when its project
    -- changed, a move_out to the old project then a move_in to the new one.
    -- A row whose old project was NULL (written before it was tracked) only
    -- moves in.
    INSERT INTO pgfeed.change_log (project, type, op, tbl, data)
    SELECT e.proj, e.etype, e.eop, tbl, e.edata
    FROM (
      SELECT nw.i, od.r AS o, nw.r AS n, od.r ->> pcol AS oldp,
             coalesce(nw.r ->> pcol, pgfeed.null_project(tbl, pcol)) AS newp
      FROM (SELECT to_jsonb(x.*) AS r, row_number() OVER () AS i FROM pgfeed_new x) nw
      JOIN (SELECT to_jsonb(x.*) AS r, row_number() OVER () AS i FROM pgfeed_old x) od USING (i)
    ) m
    CROSS JOIN LATERAL (VALUES
      (1, m.oldp, pre || '.move_out', 'delete', m.o),
      (2, m.newp, pre || '.move_in', 'insert', m.n),
      (3, m.newp, typ, 'update', jsonb_build_object('old', m.o, 'new', m.n))
    ) e(k, proj, etype, eop, edata)
    WHERE CASE e.k WHEN 1 THEN m.oldp IS NOT NULL AND m.oldp <> m.newp
                   WHEN 2 THEN m.oldp IS DISTINCT FROM m.newp
                   ELSE m.oldp = m.newp END
    ORDER BY m.i, e.k;
  END IF;
  GET DIAGNOSTICS written = ROW_COUNT;
  IF written > 0 THEN
    PERFORM pg_notify(s.channel, currval('pgfeed.change_log_seq_seq')::text) FROM pgfeed.settings s WHERE s.notify;
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION pgfeed.untrack(tbl regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('DROP TRIGGER IF EXISTS pgfeed_capture_insert ON %s', tbl);
  EXECUTE format('DROP TRIGGER IF EXISTS pgfeed_capture_update ON %s', tbl);
  EXECUTE format('DROP TRIGGER IF EXISTS pgfeed_capture_delete ON %s', tbl);
  EXECUTE format('DROP TRIGGER IF EXISTS pgfeed_capture_truncate ON %s', tbl);
  DELETE FROM pgfeed.tracked t WHERE t.tbl = untrack.tbl;
END $$;

-- The TRUNCATE trigger, for track() and for the tables tracked before 002.
CREATE FUNCTION pgfeed.track_truncate(tbl regclass, prefix text, project_column name, project text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('DROP TRIGGER IF EXISTS pgfeed_capture_truncate ON %s', tbl);
  EXECUTE format(
    'CREATE TRIGGER pgfeed_capture_truncate BEFORE TRUNCATE ON %s '
    'FOR EACH STATEMENT EXECUTE FUNCTION pgfeed.capture(%L, %L, %L)',
    tbl, prefix, coalesce(project_column, ''), coalesce(project, ''));
END $$;

-- track() as in 001, plus the TRUNCATE trigger. Its checks are unchanged.
DO $do$
DECLARE
  body text;
BEGIN
  SELECT pg_get_functiondef('pgfeed.track(regclass, name, text)'::regprocedure) INTO body;
  body := replace(body,
    'INSERT INTO pgfeed.tracked VALUES (tbl, prefix, project_column, project);',
    'PERFORM pgfeed.track_truncate(tbl, prefix, project_column, project);
  INSERT INTO pgfeed.tracked VALUES (tbl, prefix, project_column, project);');
  IF body NOT LIKE '%pgfeed.track_truncate%' THEN
    RAISE EXCEPTION 'pgfeed 002: pgfeed.track() is not the one 001 installed';
  END IF;
  EXECUTE body;
END $do$;

SELECT pgfeed.track_truncate(t.tbl, t.type_prefix, t.project_column, t.project) FROM pgfeed.tracked t;
