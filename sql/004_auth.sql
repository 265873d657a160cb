-- pgfeed 004: stream tickets and revocations (see docs/security.md).
--
-- Both live in Postgres so that every replica agrees without any other
-- service: a ticket is used once whichever replica redeems it, and a
-- revocation reaches every replica through NOTIFY, or through this table
-- when a replica's LISTEN connection was down.

-- A ticket is stored only as the SHA-256 of its text: a copy of this table
-- cannot be replayed. It carries the grant it was minted with (the token's
-- subject, issue and expiry times, the project and the allowed types), so
-- redeeming it needs no token.
CREATE TABLE pgfeed.tickets (
  hash             bytea       PRIMARY KEY,
  subject          text        NOT NULL,
  project          text        NOT NULL,
  -- NULL: every type the token allows (which may be every type).
  types            text[],
  token_issued_at  timestamptz,
  token_expires_at timestamptz NOT NULL,
  -- Redeemable for the first time until then; afterwards only by a
  -- reconnect of the same stream (with Last-Event-ID) until token_expires_at.
  expires_at       timestamptz NOT NULL,
  used_at          timestamptz,
  uses             integer     NOT NULL DEFAULT 0
);
-- The daemon prunes with it (pgfeed.prune_tickets()).
CREATE INDEX tickets_token_expires_at ON pgfeed.tickets (token_expires_at);

-- The latest revocation of each subject. A token of the subject issued
-- (iat) before revoked_at is refused, and open streams holding one end.
CREATE TABLE pgfeed.revocations (
  subject    text        PRIMARY KEY CHECK (subject <> '' AND length(subject) <= 1000),
  reason     text        NOT NULL DEFAULT '',
  revoked_at timestamptz NOT NULL
);

-- Records the revocation and tells every daemon, on the fixed channel
-- pgfeed_revoke (the payload is the subject). clock_timestamp(), not now():
-- a token minted while a long transaction that revokes was open is refused
-- too. The NOTIFY is sent at commit, when the row is visible to the daemons.
CREATE FUNCTION pgfeed.revoke(subject text, reason text DEFAULT '') RETURNS timestamptz
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  at timestamptz := clock_timestamp();
BEGIN
  IF subject IS NULL OR subject = '' THEN
    RAISE EXCEPTION 'pgfeed.revoke: the subject is empty'
      USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass the sub claim of the tokens to revoke.';
  END IF;
  INSERT INTO pgfeed.revocations AS r (subject, reason, revoked_at)
  VALUES (revoke.subject, coalesce(revoke.reason, ''), at)
  ON CONFLICT ON CONSTRAINT revocations_pkey DO UPDATE SET reason = excluded.reason, revoked_at = excluded.revoked_at;
  PERFORM pg_notify('pgfeed_revoke', revoke.subject);
  RETURN at;
END $$;

-- Tickets nobody can redeem any more: never used and past their own
-- expiry, or past their token's. Returns how many were removed.
CREATE FUNCTION pgfeed.prune_tickets() RETURNS bigint
LANGUAGE sql VOLATILE AS $$
  WITH gone AS (
    DELETE FROM pgfeed.tickets
    WHERE token_expires_at < now() OR (used_at IS NULL AND expires_at < now())
    RETURNING 1
  )
  SELECT count(*) FROM gone
$$;
