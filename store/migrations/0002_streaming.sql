-- Streaming core: config sync versions, idempotent effects, the enrollments outbox.

-- Every change to a trigger or its workflow stamps the trigger with the next value, so a
-- partition actor can tell a stale configuration update from a newer one.
CREATE SEQUENCE config_sync_seq;
ALTER TABLE workflow_triggers ADD COLUMN sync_version bigint NOT NULL DEFAULT 0;

-- The event time of the last contact event applied: an older redelivery never wins.
ALTER TABLE contacts ADD COLUMN event_ts timestamptz;

ALTER TABLE workflow_enrollments
    ADD COLUMN shard integer NOT NULL DEFAULT 0,
    ADD COLUMN single boolean NOT NULL DEFAULT false,
    ADD COLUMN ingested_at timestamptz,
    ADD COLUMN published_at timestamptz;
-- enrollment_limit single: once ever per workflow and contact, enforced here too.
CREATE UNIQUE INDEX workflow_enrollments_single ON workflow_enrollments
    (account_id, workflow_id, contact_id) WHERE single;
CREATE INDEX workflow_enrollments_outbox ON workflow_enrollments (shard, enrolled_at)
    WHERE published_at IS NULL;

-- A redelivered event never logs the same decision twice.
CREATE UNIQUE INDEX trigger_execution_logs_once ON trigger_execution_logs
    (trigger_id, event_id, contact_id) WHERE NOT is_test AND event_id IS NOT NULL;
