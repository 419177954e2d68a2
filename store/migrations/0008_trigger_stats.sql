-- Per-trigger analytics, one row per trigger and hour, added to by every batch in the batch's
-- own transaction from what the batch recorded: matched, enrolled, blocked and errors count
-- log rows and enrollments actually inserted, so a redelivered event never counts twice there;
-- `evaluated` counts every evaluation, redeliveries included. latency_ms is a histogram of
-- XADD -> enrollment latency over pipelines.trigger_stats.LATENCY_BOUNDS_MS.
CREATE TABLE trigger_stats (
    account_id        uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    workflow_id       uuid NOT NULL,
    trigger_id        uuid NOT NULL,
    hour              timestamptz NOT NULL,
    evaluated         bigint NOT NULL DEFAULT 0,
    matched           bigint NOT NULL DEFAULT 0,
    enrolled          bigint NOT NULL DEFAULT 0,
    errors            bigint NOT NULL DEFAULT 0,
    already_enrolled  bigint NOT NULL DEFAULT 0,
    cooldown          bigint NOT NULL DEFAULT 0,
    contact_deleted   bigint NOT NULL DEFAULT 0,
    loop_depth        bigint NOT NULL DEFAULT 0,
    latency_ms        bigint[] NOT NULL,
    PRIMARY KEY (account_id, workflow_id, hour, trigger_id)
);
