-- Streaming core: config sync versions, idempotent effects, the enrollments outbox.

-- Every change to a trigger or its workflow stamps the trigger with the next value, so a
-- partition actor can tell a stale configuration update from a newer one.
CREATE SEQUENCE config_sync_seq;
ALTER TABLE workflow_triggers ADD COLUMN sync_version bigint NOT NULL DEFAULT 0;

-- The event time of the last contact event applied: an older redelivery never wins.
ALTER TABLE contacts ADD COLUMN event_ts timestamptz;

ALTER TABLE workflow_enrollments
    ADD COLUMN single boolean NOT NULL DEFAULT false,
    ADD COLUMN ingested_at timestamptz;
-- enrollment_limit single: once ever per workflow and contact, enforced here too.
CREATE UNIQUE INDEX workflow_enrollments_single ON workflow_enrollments
    (account_id, workflow_id, contact_id) WHERE single;

-- The outbox: enrollments committed but not yet on the enrollments stream. Rows are written
-- in the batch's transaction and deleted once published, so the table stays small and the
-- enrollments themselves are never updated.
CREATE TABLE enrollment_outbox (
    enrollment_id  uuid PRIMARY KEY REFERENCES workflow_enrollments (id) ON DELETE CASCADE,
    shard          integer NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX enrollment_outbox_shard ON enrollment_outbox (shard, created_at);

-- A redelivered event never logs the same decision twice.
CREATE UNIQUE INDEX trigger_execution_logs_once ON trigger_execution_logs
    (trigger_id, event_id, contact_id) WHERE NOT is_test AND event_id IS NOT NULL;
