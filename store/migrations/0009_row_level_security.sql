-- Row-level security as defense in depth (docs/operations.md §10). The API works as the role hairtrigger_api
-- and names its account per connection checkout (hairtrigger.account_id); every tenant table
-- then shows and accepts only that account's rows, and nothing when no account is named. The
-- owner of the tables (the partition actors, the scheduler, migrations, the CLI) is not subject
-- to these policies: they work across accounts by design.

-- Made here when the migrating user may (an administrator can make it beforehand instead, and
-- grant it to the user that migrates and serves: managed Postgres often works that way).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hairtrigger_api') THEN
        CREATE ROLE hairtrigger_api NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- roles are cluster-wide: another database (or a concurrent migrator) made it
END
$$;
DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'hairtrigger_api', 'MEMBER') THEN
        EXECUTE format('GRANT hairtrigger_api TO %I', current_user);
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

-- Explicit grants, table by table: a table added later is not the API's until a migration
-- grants it (with its policy). schema_migrations and the owner-only tables are not granted.
GRANT USAGE ON SCHEMA public TO hairtrigger_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON
    accounts, api_keys, workflows, workflow_triggers, trigger_audit_log, contacts,
    workflow_enrollments, trigger_execution_logs, contact_dates, time_agenda, recurring_runs,
    trigger_stats, ingest_outbox, idempotency_keys
    TO hairtrigger_api;
GRANT USAGE, SELECT ON
    trigger_audit_log_id_seq, trigger_execution_logs_id_seq, ingest_outbox_id_seq,
    config_sync_seq
    TO hairtrigger_api;

-- The account the current connection works for; NULL (no rows) when none is named.
CREATE FUNCTION hairtrigger_account() RETURNS uuid LANGUAGE sql STABLE AS
$$ SELECT nullif(current_setting('hairtrigger.account_id', true), '')::uuid $$;

-- 403 rather than 404 for another account's workflow (REQ-U-004): whether the id exists under
-- another account, and nothing more, answered past the policies.
CREATE FUNCTION hairtrigger_workflow_elsewhere(wanted uuid, with_deleted boolean)
    RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
$$ SELECT EXISTS (SELECT 1 FROM workflows WHERE id = wanted
                  AND account_id IS DISTINCT FROM hairtrigger_account()
                  AND (with_deleted OR deleted_at IS NULL)) $$;

REVOKE ALL ON FUNCTION hairtrigger_workflow_elsewhere(uuid, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hairtrigger_workflow_elsewhere(uuid, boolean) TO hairtrigger_api;

ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON accounts USING (id = hairtrigger_account());

DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY[
        'api_keys', 'workflows', 'workflow_triggers', 'trigger_audit_log', 'contacts',
        'workflow_enrollments', 'trigger_execution_logs', 'contact_dates', 'time_agenda',
        'recurring_runs', 'trigger_stats', 'ingest_outbox', 'idempotency_keys'
    ] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', name);
        EXECUTE format(
            'CREATE POLICY tenant ON %I USING (account_id = hairtrigger_account())'
            ' WITH CHECK (account_id = hairtrigger_account())', name);
    END LOOP;
END
$$;

-- No account_id of their own: only the owner (actors, scheduler) reads and writes them.
ALTER TABLE enrollment_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE time_watermarks ENABLE ROW LEVEL SECURITY;
