-- Events accepted over HTTP while Redis was unreachable, in arrival order; a relay moves them
-- to their shard streams once Redis is back (docs/architecture.md §4: ingest that survives a Redis outage).
CREATE TABLE ingest_outbox (
    id          bigserial PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    stream      text NOT NULL,
    payload     bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingest_outbox_account ON ingest_outbox (account_id, id);
