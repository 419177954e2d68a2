-- Idempotency keys (docs/operations.md §9): the first response to a keyed POST/PUT/PATCH, per account, so a
-- retry with the same key gets it back instead of acting twice. A 'running' row is a claim;
-- its lease lets a retry take over from a request that crashed, and claim_id keeps the request
-- it took over from from writing over it. Rows live 24 hours.
CREATE TABLE idempotency_keys (
    account_id   uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    key          text NOT NULL,
    fingerprint  bytea NOT NULL,
    state        text NOT NULL CHECK (state IN ('running', 'done')),
    claim_id     uuid NOT NULL,
    lease_until  timestamptz,
    status       integer,
    headers      jsonb,
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Expired keys of every account, a batch at a time. SECURITY DEFINER: it runs as the owner of
-- the table, so it works the same whether the caller's connection is limited to one account
-- (row-level security) or not.
CREATE FUNCTION hairtrigger_prune_idempotency_keys(ttl_s double precision, batch integer)
RETURNS integer LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH gone AS (
        DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(
            SELECT ctid FROM idempotency_keys
            WHERE created_at <= now() - make_interval(secs => ttl_s)
            ORDER BY created_at LIMIT batch FOR UPDATE SKIP LOCKED))
        RETURNING 1)
    SELECT count(*)::integer FROM gone
$$;
