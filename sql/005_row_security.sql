-- pgfeed 005: row-level security policies on the change log.
--
-- Inert until an operator turns row security on for the table
-- (ALTER TABLE pgfeed.change_log ENABLE ROW LEVEL SECURITY, as its owner)
-- and the daemon runs with PGFEED_ROW_SECURITY=true as a role that does not
-- own it (the owner is never bound by its table's policies). Then a role
-- reading the log sees only the rows of the project its transaction names,
-- whatever the query's own WHERE says: a second wall behind the daemon's
-- filter. See docs/database-role.md.
--
-- The policies name no role: roles are cluster-wide and are created by
-- whoever administers the server, not by a migration. They apply to every
-- role that does not own the table.

-- Each setting is read in a subquery, which Postgres evaluates once per
-- query rather than once per row.
--
-- A stream's reads: the daemon names the stream's project in each read's
-- transaction with set_config('pgfeed.project', $1, true) (SET LOCAL).
-- Unset, current_setting(..., true) is NULL or '' and no row matches.
CREATE POLICY change_log_project ON pgfeed.change_log FOR SELECT
  USING (project = (SELECT current_setting('pgfeed.project', true)));

-- The shared tail reads every project at once, then the daemon hands each
-- event only to the streams of its project. Its transactions say so with a
-- setting of their own, so that no project name (not even '*') can stand
-- for all of them.
CREATE POLICY change_log_tail ON pgfeed.change_log FOR SELECT
  USING ((SELECT current_setting('pgfeed.all_projects', true)) = 'on');

-- Writers append through the capture triggers and pgfeed.emit(), which run
-- as the writing role.
CREATE POLICY change_log_append ON pgfeed.change_log FOR INSERT
  WITH CHECK (true);

-- emit() returns the new row's seq (INSERT ... RETURNING), for which
-- Postgres asks that the new row pass a SELECT policy too: a writer sees the
-- rows its own transaction wrote, and no other. A reader that has written
-- nothing has no transaction id, and the function assigns none.
CREATE POLICY change_log_own_writes ON pgfeed.change_log FOR SELECT
  USING (xid = (SELECT pg_current_xact_id_if_assigned()));
