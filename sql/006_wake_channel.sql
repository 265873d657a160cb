-- pgfeed 006: writers no longer read pgfeed.settings to decide on NOTIFY.
--
-- Every capture statement and every emit() read the settings row to learn
-- whether to notify, and on which channel: a scan of a one-row table, with a
-- heap visit, per statement. With 16 concurrent single-row writers that read
-- cost about 0.05 of a tracked table's throughput against an untracked one
-- (bench/README.md, "Doorbell"). Now the answer is the body of a function,
-- pgfeed.wake_channel(): the channel, or NULL when writers do not notify.
-- Postgres inlines a SQL function whose body is a constant, so the check
-- costs nothing at run time, and a cached plan that inlined it is replanned
-- when the function is replaced.
--
-- The function is rewritten by a trigger on pgfeed.settings whenever channel
-- or notify change, so an UPDATE of the settings (pgfeed migrate --channel,
-- pgfeed settings, or by hand) still takes effect for every writer from its
-- next statement, as before.

-- A placeholder, replaced below from the settings row.
CREATE FUNCTION pgfeed.wake_channel() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT NULL::text $$;

-- SECURITY DEFINER: whoever may update the settings may change what the
-- function answers, without owning it. The body is built from the row's
-- values as literals only.
CREATE FUNCTION pgfeed.write_wake_channel() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  EXECUTE format(
    'CREATE OR REPLACE FUNCTION pgfeed.wake_channel() RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS %L',
    format('SELECT %s::text', CASE WHEN NEW.notify THEN quote_literal(NEW.channel) ELSE 'NULL' END));
  RETURN NULL;
END $$;
REVOKE EXECUTE ON FUNCTION pgfeed.write_wake_channel() FROM PUBLIC;

-- Not on every update: retention writes pruned_through after each pass, and
-- replacing the function would replan every writer's statements each time.
CREATE TRIGGER pgfeed_wake_channel AFTER UPDATE ON pgfeed.settings FOR EACH ROW
  WHEN (OLD.channel IS DISTINCT FROM NEW.channel OR OLD.notify IS DISTINCT FROM NEW.notify)
  EXECUTE FUNCTION pgfeed.write_wake_channel();

-- Today's settings, through the trigger.
UPDATE pgfeed.settings SET notify = NOT notify;
UPDATE pgfeed.settings SET notify = NOT notify;

-- capture() and emit() as 002 and 001 left them, but for the settings read.
-- In plpgsql an IF on a constant-folded expression is a simple expression:
-- no query runs when the function answers NULL.
DO $do$
DECLARE
  f text;
  old_line text;
  new_line text;
  body text;
BEGIN
  FOR f, old_line, new_line IN VALUES
    ('pgfeed.capture()',
     'PERFORM pg_notify(s.channel, currval(''pgfeed.change_log_seq_seq'')::text) FROM pgfeed.settings s WHERE s.notify;',
     'IF pgfeed.wake_channel() IS NOT NULL THEN
      PERFORM pg_notify(pgfeed.wake_channel(), currval(''pgfeed.change_log_seq_seq'')::text);
    END IF;'),
    ('pgfeed.emit(text, text, jsonb)',
     'PERFORM pg_notify(st.channel, s::text) FROM pgfeed.settings st WHERE st.notify;',
     'IF pgfeed.wake_channel() IS NOT NULL THEN
    PERFORM pg_notify(pgfeed.wake_channel(), s::text);
  END IF;')
  LOOP
    SELECT pg_get_functiondef(f::regprocedure) INTO body;
    IF position(old_line IN body) = 0 THEN
      RAISE EXCEPTION 'pgfeed 006: % is not the one earlier migrations installed', f;
    END IF;
    EXECUTE replace(body, old_line, new_line);
  END LOOP;
END $do$;
