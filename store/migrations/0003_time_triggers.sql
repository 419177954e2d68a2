-- Time triggers (docs/contract.md §7): a side table of contacts' dates, the scheduler's agenda and
-- watermarks, recurring runs, and the queue of enrollments waiting for business hours.

-- Every ISO date among a contact's top-level and custom fields, maintained with the projection,
-- so a day's birthdays are an index lookup instead of a scan of all contacts.
CREATE TABLE contact_dates (
    account_id  uuid NOT NULL,
    contact_id  uuid NOT NULL,
    field       text NOT NULL,
    day         date NOT NULL,
    md          smallint NOT NULL,  -- month * 100 + day, for yearly dates
    PRIMARY KEY (account_id, contact_id, field)
);
CREATE INDEX contact_dates_yearly ON contact_dates (account_id, field, md);
CREATE INDEX contact_dates_day ON contact_dates (account_id, field, day);

-- Planned occurrences of date triggers: one row per (trigger, contact, occurrence).
CREATE TABLE time_agenda (
    trigger_id  uuid NOT NULL,
    contact_id  uuid NOT NULL,
    occurrence  text NOT NULL,
    account_id  uuid NOT NULL,
    field       text NOT NULL,
    day         date NOT NULL,  -- the contact's date value the occurrence was planned from
    due_at      timestamptz NOT NULL,
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'emitted', 'skipped', 'stale')),
    PRIMARY KEY (trigger_id, contact_id, occurrence)
);
CREATE INDEX time_agenda_due ON time_agenda (due_at) WHERE status = 'pending';

-- Per time trigger: occurrences up to `watermark` have been planned (or skipped and logged).
CREATE TABLE time_watermarks (
    trigger_id  uuid PRIMARY KEY,
    watermark   timestamptz NOT NULL,
    planned_at  timestamptz NOT NULL
);

-- Occurrences of recurring schedules; `cursor` is the last contact emitted, so a restart
-- resumes an emission where it stopped.
CREATE TABLE recurring_runs (
    trigger_id  uuid NOT NULL,
    occurrence  text NOT NULL,
    account_id  uuid NOT NULL,
    due_at      timestamptz NOT NULL,
    cursor      uuid,
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'skipped')),
    PRIMARY KEY (trigger_id, occurrence)
);
CREATE INDEX recurring_runs_due ON recurring_runs (due_at) WHERE status = 'pending';

CREATE INDEX workflow_enrollments_queued ON workflow_enrollments (run_at)
    WHERE status = 'queued';
