-- Hairtrigger schema, first version. account_id is on every tenant row.

CREATE TABLE accounts (
    id              uuid PRIMARY KEY,
    name            text NOT NULL,
    timezone        text NOT NULL DEFAULT 'UTC',
    business_hours  jsonb NOT NULL
        DEFAULT '{"days": ["mon","tue","wed","thu","fri"], "start": "09:00", "end": "17:00"}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id          uuid PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    key_hash    bytea NOT NULL,
    scopes      text[] NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_account ON api_keys (account_id);

CREATE TABLE workflows (
    id           uuid PRIMARY KEY,
    account_id   uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name         text NOT NULL,
    description  text NOT NULL DEFAULT '',
    status       text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'paused')),
    actions      jsonb NOT NULL DEFAULT '[]',
    version      integer NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz
);
CREATE INDEX workflows_account_live ON workflows (account_id, created_at, id)
    WHERE deleted_at IS NULL;

CREATE TABLE workflow_triggers (
    id             uuid PRIMARY KEY,
    account_id     uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    workflow_id    uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    trigger_type   text NOT NULL,
    trigger_event  text NOT NULL,
    filters        jsonb NOT NULL,
    settings       jsonb NOT NULL,
    is_active      boolean NOT NULL DEFAULT true,
    version        integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz
);
-- One live trigger per workflow, enforced here so concurrent creates cannot both win.
CREATE UNIQUE INDEX workflow_triggers_one_live ON workflow_triggers (workflow_id)
    WHERE deleted_at IS NULL;
CREATE INDEX workflow_triggers_account_workflow ON workflow_triggers (account_id, workflow_id)
    WHERE deleted_at IS NULL;
CREATE INDEX workflow_triggers_account_event ON workflow_triggers (account_id, trigger_event)
    WHERE deleted_at IS NULL AND is_active;

CREATE TABLE trigger_audit_log (
    id           bigserial PRIMARY KEY,
    account_id   uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    workflow_id  uuid NOT NULL,
    trigger_id   uuid,
    action       text NOT NULL,
    actor_key_id uuid,
    before       jsonb,
    after        jsonb,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX trigger_audit_log_workflow ON trigger_audit_log (account_id, workflow_id, id);

CREATE TABLE contacts (
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    contact_id  uuid NOT NULL,
    state       jsonb NOT NULL DEFAULT '{}',
    tags        text[] NOT NULL DEFAULT '{}',
    deleted     boolean NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, contact_id)
);

CREATE TABLE workflow_enrollments (
    id           uuid PRIMARY KEY,
    account_id   uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    workflow_id  uuid NOT NULL,
    trigger_id   uuid NOT NULL,
    contact_id   uuid NOT NULL,
    event_id     uuid NOT NULL,
    status       text NOT NULL CHECK (status IN ('triggered', 'queued')),
    run_at       timestamptz NOT NULL,
    enrolled_at  timestamptz NOT NULL DEFAULT now(),
    event_data   jsonb NOT NULL DEFAULT '{}',
    -- The same event never enrolls a contact in a workflow twice.
    UNIQUE (account_id, workflow_id, contact_id, event_id)
);
CREATE INDEX workflow_enrollments_workflow ON workflow_enrollments (account_id, workflow_id, enrolled_at);
-- (.., enrolled_at) last: "the latest enrollment of a contact in a workflow" is one index probe.
CREATE INDEX workflow_enrollments_contact ON workflow_enrollments
    (account_id, contact_id, workflow_id, enrolled_at);

CREATE TABLE trigger_execution_logs (
    id              bigserial PRIMARY KEY,
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
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX trigger_execution_logs_workflow ON trigger_execution_logs (account_id, workflow_id, id);
CREATE INDEX trigger_execution_logs_contact ON trigger_execution_logs (account_id, contact_id, id);
