-- pgfeed 001: the change log and its capture functions.
--
-- Delivery order is (xid, seq), and a row is only delivered once its xid is
-- below the snapshot xmin horizon (see docs/ordering.md). The indexes below
-- exist to serve exactly those range scans, globally and per project.

CREATE SCHEMA IF NOT EXISTS pgfeed;

CREATE TABLE pgfeed.change_log (
  seq        bigserial   PRIMARY KEY,
  -- The top-level transaction id: every row of one transaction shares it,
  -- savepoints included, so a transaction is delivered as one block.
  xid        xid8        NOT NULL DEFAULT pg_current_xact_id(),
  project    text        NOT NULL CHECK (project <> ''),
  type       text        NOT NULL CHECK (type <> '' AND type !~ '[\r\n\x01-\x1f]'),
  op         text        CHECK (op IN ('insert', 'update', 'delete')),
  tbl        text,
  data       jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX change_log_xid_seq ON pgfeed.change_log (xid, seq);
CREATE INDEX change_log_project_xid_seq ON pgfeed.change_log (project, xid, seq);

-- One row of settings the triggers read. The daemon writes the channel it
-- listens on, and whether writers notify at all, at start-up, so writers and
-- daemon never disagree. With notify off, writers skip pg_notify and its
-- commit-time lock, and the daemon finds changes by polling alone.
-- pruned_through is the highest seq retention has removed: a cursor at or
-- below it is expired (410), never silently restarted.
CREATE TABLE pgfeed.settings (
  id             boolean PRIMARY KEY DEFAULT true CHECK (id),
  channel        text    NOT NULL DEFAULT 'pgfeed',
  notify         boolean NOT NULL DEFAULT true,
  pruned_through bigint  NOT NULL DEFAULT 0
);
INSERT INTO pgfeed.settings DEFAULT VALUES;

CREATE FUNCTION pgfeed.channel() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT channel FROM pgfeed.settings $$;

-- Tables under capture, with the arguments their triggers were made with.
CREATE TABLE pgfeed.tracked (
  tbl            regclass PRIMARY KEY,
  type_prefix    text     NOT NULL,
  project_column name,
  project        text,
  CHECK ((project_column IS NULL) <> (project IS NULL))
);

-- Called (lazily, through COALESCE) only when a captured row has no project,
-- so that such a row fails loudly instead of vanishing from every stream.
CREATE FUNCTION pgfeed.null_project(tbl text, project_column text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  RAISE EXCEPTION 'pgfeed: a row of % has NULL in its project column "%"', tbl, project_column
    USING ERRCODE = 'not_null_violation',
          HINT = 'Set the column on every row, or track the table with a constant project: pgfeed.track(tbl, NULL, ''my-project'').';
END $$;

-- Statement-level capture with transition tables: one INSERT ... SELECT and
-- at most one pg_notify per statement, whatever the row count. Against
-- per-row triggers it measured about 3x faster on multi-row statements and
-- no faster on single-row ones (bench/capture.bench.ts, bench/README.md).
-- Rows are taken as `to_jsonb(x.*)`: a bare `x` would mean a column if the
-- table has one named x. TG_ARGV: [0] type prefix, [1] project column or '', [2] constant project or ''.
-- The statement's last seq is currval(): change_log rows take their seq from
-- nextval() one by one, in this session, so the last value drawn is the
-- statement's highest. That spares a RETURNING of every seq and an aggregate.
CREATE FUNCTION pgfeed.capture() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  op      text := lower(TG_OP);
  tbl     text := format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME);
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
  ELSE
    -- Postgres appends to the old and new transition tables in lockstep, one
    -- pair per updated row, so equal ordinals pair a row's before and after.
    INSERT INTO pgfeed.change_log (project, type, op, tbl, data)
    SELECT coalesce(pconst, nw.r ->> pcol, pgfeed.null_project(tbl, pcol)), typ, op, tbl,
           jsonb_build_object('old', od.r, 'new', nw.r)
    FROM (SELECT to_jsonb(x.*) AS r, row_number() OVER () AS i FROM pgfeed_new x) nw
    JOIN (SELECT to_jsonb(x.*) AS r, row_number() OVER () AS i FROM pgfeed_old x) od USING (i);
  END IF;
  GET DIAGNOSTICS written = ROW_COUNT;
  IF written > 0 THEN
    -- The settings are read inline rather than through pgfeed.channel(): one
    -- function call less per statement, same value.
    PERFORM pg_notify(s.channel, currval('pgfeed.change_log_seq_seq')::text) FROM pgfeed.settings s WHERE s.notify;
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION pgfeed.untrack(tbl regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('DROP TRIGGER IF EXISTS pgfeed_capture_insert ON %s', tbl);
  EXECUTE format('DROP TRIGGER IF EXISTS pgfeed_capture_update ON %s', tbl);
  EXECUTE format('DROP TRIGGER IF EXISTS pgfeed_capture_delete ON %s', tbl);
  DELETE FROM pgfeed.tracked t WHERE t.tbl = untrack.tbl;
END $$;

-- Event types are '<table>.<op>'. The table is named without its schema when
-- it lives in "public", and as '<schema>.<table>' otherwise, so two tracked
-- tables can never share a type.
CREATE FUNCTION pgfeed.track(tbl regclass, project_column name DEFAULT NULL, project text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  nsp    name;
  rel    name;
  kind   "char";
  prefix text;
BEGIN
  SELECT n.nspname, c.relname, c.relkind INTO nsp, rel, kind
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl;
  IF kind NOT IN ('r', 'p') THEN
    RAISE EXCEPTION 'pgfeed.track: % is not a table', tbl USING ERRCODE = 'wrong_object_type';
  END IF;
  IF nsp = 'pgfeed' THEN
    RAISE EXCEPTION 'pgfeed.track: tables of the pgfeed schema cannot be tracked' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- Types starting with 'pgfeed.' are the daemon's control events.
  IF nsp = 'public' AND rel = 'pgfeed' THEN
    RAISE EXCEPTION 'pgfeed.track: public.pgfeed would produce event types starting with "pgfeed.", which are reserved'
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Rename the table, or move it to another schema: its types are then <schema>.pgfeed.<op>.';
  END IF;
  -- A dot would let two tables share a type (public."a.b" and a.b); a control
  -- character can never be part of an event name.
  IF nsp ~ '[.\x01-\x1f]' OR rel ~ '[.\x01-\x1f]' THEN
    RAISE EXCEPTION 'pgfeed.track: % cannot be tracked: its schema or table name contains a dot or a control character', tbl
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Rename the table (or its schema): event types are built from these names.';
  END IF;
  IF (project_column IS NULL) = (project IS NULL) THEN
    RAISE EXCEPTION 'pgfeed.track: give exactly one of project_column or project'
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'pgfeed.track(''orders'', ''tenant'') takes each row''s project from a column; pgfeed.track(''orders'', NULL, ''acme'') uses a constant.';
  END IF;
  IF project = '' THEN
    RAISE EXCEPTION 'pgfeed.track: project must not be empty' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF project_column IS NOT NULL AND NOT EXISTS (
      SELECT 1 FROM pg_attribute a
      WHERE a.attrelid = tbl AND a.attname = project_column AND a.attnum > 0 AND NOT a.attisdropped) THEN
    RAISE EXCEPTION 'pgfeed.track: table % has no column "%"', tbl, project_column
      USING ERRCODE = 'undefined_column',
            HINT = 'Name an existing column that holds each row''s project, or pass a constant project.';
  END IF;

  prefix := CASE WHEN nsp = 'public' THEN rel ELSE nsp || '.' || rel END;
  PERFORM pgfeed.untrack(tbl);
  EXECUTE format(
    'CREATE TRIGGER pgfeed_capture_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS pgfeed_new '
    'FOR EACH STATEMENT EXECUTE FUNCTION pgfeed.capture(%L, %L, %L)',
    tbl, prefix, coalesce(project_column, ''), coalesce(project, ''));
  EXECUTE format(
    'CREATE TRIGGER pgfeed_capture_update AFTER UPDATE ON %s REFERENCING OLD TABLE AS pgfeed_old NEW TABLE AS pgfeed_new '
    'FOR EACH STATEMENT EXECUTE FUNCTION pgfeed.capture(%L, %L, %L)',
    tbl, prefix, coalesce(project_column, ''), coalesce(project, ''));
  EXECUTE format(
    'CREATE TRIGGER pgfeed_capture_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS pgfeed_old '
    'FOR EACH STATEMENT EXECUTE FUNCTION pgfeed.capture(%L, %L, %L)',
    tbl, prefix, coalesce(project_column, ''), coalesce(project, ''));
  INSERT INTO pgfeed.tracked VALUES (tbl, prefix, project_column, project);
END $$;

-- A domain event, written in the caller's transaction: it commits or rolls
-- back with it, savepoints included.
CREATE FUNCTION pgfeed.emit(project text, type text, data jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  s bigint;
BEGIN
  IF project IS NULL OR project = '' THEN
    RAISE EXCEPTION 'pgfeed.emit: project must be a non-empty string' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF type IS NULL OR type = '' OR type ~ '[\r\n\x01-\x1f]' THEN
    RAISE EXCEPTION 'pgfeed.emit: type must be a non-empty string without control characters' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF type LIKE 'pgfeed.%' THEN
    RAISE EXCEPTION 'pgfeed.emit: the type prefix "pgfeed." is reserved for control events' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  INSERT INTO pgfeed.change_log (project, type, op, tbl, data)
  VALUES (emit.project, emit.type, NULL, NULL, emit.data)
  RETURNING seq INTO s;
  PERFORM pg_notify(st.channel, s::text) FROM pgfeed.settings st WHERE st.notify;
  RETURN s;
END $$;
