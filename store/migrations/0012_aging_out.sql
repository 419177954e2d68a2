-- Data that ages out (docs/operations.md §15, docs/decisions.md §13).
--
-- trigger_execution_logs becomes partitioned by day of occurred_at, the timestamp of the event
-- the row is about (now() for rows without one: test runs, skipped occurrences), so a
-- redelivered event lands in the partition that already holds its row and the once-only index,
-- which must include the partition key, still drops the repeat. Existing rows are moved in,
-- with occurred_at = created_at. A DEFAULT partition takes rows whose day has no partition of
-- its own; housekeeping makes the days ahead, moves such rows when their day is made, and
-- deletes them past retention.
--
-- workflow_enrollments stays as it is: the live table, with its unique indexes (dedupe,
-- single), the outbox's foreign key and the one-probe history read. Ended enrollments move
-- to workflow_enrollment_history, partitioned by month of enrolled_at, and leave with their
-- partition.

ALTER TABLE trigger_execution_logs RENAME TO trigger_execution_logs_unpartitioned;
ALTER TABLE trigger_execution_logs_unpartitioned
    RENAME CONSTRAINT trigger_execution_logs_pkey TO trigger_execution_logs_unpartitioned_pkey;
ALTER SEQUENCE trigger_execution_logs_id_seq OWNED BY NONE;

CREATE TABLE trigger_execution_logs (
    id              bigint NOT NULL DEFAULT nextval('trigger_execution_logs_id_seq'),
    account_id      uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    workflow_id     uuid NOT NULL,
    trigger_id      uuid NOT NULL,
    contact_id      uuid,
    event_id        uuid,
    event_type      text NOT NULL,
    matched         boolean NOT NULL,
    enrolled        boolean NOT NULL DEFAULT false,
    failure_reason  text,
    is_test         boolean NOT NULL DEFAULT false,
    details         jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);
ALTER SEQUENCE trigger_execution_logs_id_seq OWNED BY trigger_execution_logs.id;
CREATE TABLE trigger_execution_logs_default PARTITION OF trigger_execution_logs DEFAULT;

-- Days with rows in the last 92 (older rows wait in the default partition for housekeeping to
-- delete them), through a week ahead. Housekeeping keeps this going.
DO $$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
    first date := greatest(
        least(coalesce((SELECT min(created_at AT TIME ZONE 'UTC')::date
                        FROM trigger_execution_logs_unpartitioned), today), today),
        today - 92);
    day date;
BEGIN
    FOR day IN SELECT d::date FROM generate_series(first, today + 7, interval '1 day') AS d LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF trigger_execution_logs FOR VALUES FROM (%L) TO (%L)',
            'trigger_execution_logs_p' || to_char(day, 'YYYYMMDD'),
            day::text || ' 00:00:00+00', (day + 1)::text || ' 00:00:00+00');
    END LOOP;
END
$$;

INSERT INTO trigger_execution_logs (id, account_id, workflow_id, trigger_id, contact_id,
    event_id, event_type, matched, enrolled, failure_reason, is_test, details, created_at,
    occurred_at)
SELECT id, account_id, workflow_id, trigger_id, contact_id, event_id, event_type, matched,
    enrolled, failure_reason, is_test, details, created_at, created_at
FROM trigger_execution_logs_unpartitioned;
DROP TABLE trigger_execution_logs_unpartitioned;

CREATE INDEX trigger_execution_logs_workflow ON trigger_execution_logs (account_id, workflow_id, id);
CREATE INDEX trigger_execution_logs_contact ON trigger_execution_logs (account_id, contact_id, id);
CREATE INDEX trigger_execution_logs_account ON trigger_execution_logs (account_id, id);
-- A redelivered event never logs the same decision twice: its occurred_at is the event's own.
CREATE UNIQUE INDEX trigger_execution_logs_once ON trigger_execution_logs
    (trigger_id, event_id, contact_id, occurred_at) WHERE NOT is_test AND event_id IS NOT NULL;

CREATE TABLE workflow_enrollment_history (
    id           uuid NOT NULL,
    account_id   uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    workflow_id  uuid NOT NULL,
    trigger_id   uuid NOT NULL,
    contact_id   uuid NOT NULL,
    event_id     uuid NOT NULL,
    status       text NOT NULL,
    run_at       timestamptz NOT NULL,
    enrolled_at  timestamptz NOT NULL,
    event_data   jsonb NOT NULL,
    single       boolean NOT NULL,
    ingested_at  timestamptz,
    PRIMARY KEY (id, enrolled_at)
) PARTITION BY RANGE (enrolled_at);
CREATE TABLE workflow_enrollment_history_default PARTITION OF workflow_enrollment_history DEFAULT;
CREATE INDEX workflow_enrollment_history_workflow ON workflow_enrollment_history
    (account_id, workflow_id, enrolled_at);
CREATE INDEX workflow_enrollment_history_contact ON workflow_enrollment_history
    (account_id, contact_id, workflow_id, enrolled_at);

-- What housekeeping looks for in the live table: published `multiple` enrollments, oldest first.
CREATE INDEX workflow_enrollments_ended ON workflow_enrollments (enrolled_at)
    WHERE NOT single AND status = 'triggered';

-- Row-level security and grants as in 0009. Partitions have neither: the API reaches rows
-- only through the parents, whose policy applies to every partition.
GRANT SELECT, INSERT, UPDATE, DELETE ON trigger_execution_logs, workflow_enrollment_history
    TO hairtrigger_api;
ALTER TABLE trigger_execution_logs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON trigger_execution_logs USING (account_id = hairtrigger_account())
    WITH CHECK (account_id = hairtrigger_account());
ALTER TABLE workflow_enrollment_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON workflow_enrollment_history USING (account_id = hairtrigger_account())
    WITH CHECK (account_id = hairtrigger_account());
