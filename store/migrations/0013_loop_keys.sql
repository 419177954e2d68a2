-- The loop check loads only the workflows reachable from the changed one (docs/architecture.md
-- §5): each trigger is filed under the keys of pipelines.loop_search, looked up by overlap.
-- Rows saved before this have NULL keys until migrate() files them; until then the check
-- loads them by event. The lookup index skips the pending list, so a read never scans it.
ALTER TABLE workflow_triggers ADD COLUMN loop_keys bigint[];
CREATE INDEX workflow_triggers_loop_keys ON workflow_triggers USING gin (loop_keys)
    WITH (fastupdate = off) WHERE deleted_at IS NULL AND is_active;
CREATE INDEX workflow_triggers_loop_keys_missing ON workflow_triggers (account_id, trigger_event)
    WHERE loop_keys IS NULL AND deleted_at IS NULL;
-- Every config change stamps all of the workflow's triggers, deleted ones too
-- (store.config_sync.bump): the live-only indexes cannot serve that, a scan of the table did.
CREATE INDEX workflow_triggers_workflow ON workflow_triggers (workflow_id);

-- The loop check's lookup, past the policies: under row-level security Postgres does not use an
-- index for an operator that is not leakproof, and array overlap (&&) is not, so the API's own
-- query would scan the table. This answers for the account the connection works for only.
CREATE FUNCTION hairtrigger_loop_listeners(account uuid, keys bigint[], events text[], known uuid[])
    RETURNS TABLE (workflow_id uuid, name text, actions jsonb, created_at timestamptz,
                   trigger_event text, filters jsonb)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
$$ SELECT w.id, w.name, w.actions, w.created_at, t.trigger_event, t.filters
   FROM workflow_triggers t JOIN workflows w ON w.id = t.workflow_id
   WHERE account = hairtrigger_account() AND t.account_id = account AND w.account_id = account
     AND t.deleted_at IS NULL AND t.is_active AND w.status = 'active' AND w.deleted_at IS NULL
     AND NOT (w.id = ANY(known))
     AND (t.loop_keys && keys OR (t.loop_keys IS NULL AND t.trigger_event = ANY(events))) $$;

REVOKE ALL ON FUNCTION hairtrigger_loop_listeners(uuid, bigint[], text[], uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hairtrigger_loop_listeners(uuid, bigint[], text[], uuid[])
    TO hairtrigger_api;
