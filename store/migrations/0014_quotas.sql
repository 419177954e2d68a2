-- Quotas per account (docs/contract.md §15). Each trigger carries its sizes (pipelines.sizes:
-- its filters as stored JSON, and the estimate of its compiled index), written with the
-- trigger; rows saved before this get them from migrate() (store.quotas.fill_sizes), which
-- SQL cannot compute.
ALTER TABLE workflow_triggers ADD COLUMN filter_bytes integer, ADD COLUMN index_bytes integer;
-- GET /account/settings shows the largest trigger: the top of this index, not a scan.
CREATE INDEX workflow_triggers_filter_bytes ON workflow_triggers (account_id, filter_bytes)
    WHERE deleted_at IS NULL;
-- What migrate() still has to size: empty once it has, so each start finds nothing at once.
CREATE INDEX workflow_triggers_unsized ON workflow_triggers (id)
    WHERE index_bytes IS NULL AND deleted_at IS NULL;

-- What each account uses, kept by the triggers below in the transaction of every write, so a
-- quota check reads one row (flat in the account's size) and the row's lock makes concurrent
-- writes of an account take turns: two creates at quota - 1 cannot both pass.
CREATE TABLE account_usage (
    account_id  uuid PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    workflows   integer NOT NULL DEFAULT 0,
    triggers    integer NOT NULL DEFAULT 0,
    index_bytes bigint NOT NULL DEFAULT 0
);

INSERT INTO account_usage (account_id, workflows, triggers)
SELECT a.id,
       (SELECT count(*) FROM workflows w WHERE w.account_id = a.id AND w.deleted_at IS NULL),
       (SELECT count(*) FROM workflow_triggers t
        WHERE t.account_id = a.id AND t.deleted_at IS NULL)
FROM accounts a;

-- Adds the use of a row that became live and takes back that of one that stopped being; an
-- account being deleted has no usage row left to update (hence UPDATE, not an upsert, there).
-- Past the policies (SECURITY DEFINER), so the API may read its usage but never write it.
CREATE FUNCTION hairtrigger_count_usage(account uuid, add_workflows integer,
                                        add_triggers integer, add_bytes bigint) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS
$$
BEGIN
    IF add_workflows >= 0 AND add_triggers >= 0 AND add_bytes >= 0 THEN
        INSERT INTO account_usage AS u (account_id, workflows, triggers, index_bytes)
        VALUES (account, add_workflows, add_triggers, add_bytes)
        ON CONFLICT (account_id) DO UPDATE SET
            workflows = u.workflows + excluded.workflows,
            triggers = u.triggers + excluded.triggers,
            index_bytes = u.index_bytes + excluded.index_bytes;
    ELSE
        UPDATE account_usage AS u SET
            workflows = u.workflows + add_workflows,
            triggers = u.triggers + add_triggers,
            index_bytes = u.index_bytes + add_bytes
        WHERE u.account_id = account;
    END IF;
END
$$;

CREATE FUNCTION hairtrigger_workflow_usage() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS
$$
DECLARE
    was integer := CASE WHEN TG_OP = 'INSERT' THEN 0
                        WHEN OLD.deleted_at IS NULL THEN 1 ELSE 0 END;
    now_live integer := CASE WHEN TG_OP = 'DELETE' THEN 0
                             WHEN NEW.deleted_at IS NULL THEN 1 ELSE 0 END;
BEGIN
    IF now_live <> was THEN
        PERFORM hairtrigger_count_usage(
            CASE WHEN TG_OP = 'DELETE' THEN OLD.account_id ELSE NEW.account_id END,
            now_live - was, 0, 0);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION hairtrigger_trigger_usage() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS
$$
DECLARE
    was integer := CASE WHEN TG_OP = 'INSERT' THEN 0
                        WHEN OLD.deleted_at IS NULL THEN 1 ELSE 0 END;
    now_live integer := CASE WHEN TG_OP = 'DELETE' THEN 0
                             WHEN NEW.deleted_at IS NULL THEN 1 ELSE 0 END;
    bytes bigint := 0;
BEGIN
    IF now_live = 1 THEN
        bytes := coalesce(NEW.index_bytes, 0);
    END IF;
    IF was = 1 THEN
        bytes := bytes - coalesce(OLD.index_bytes, 0);
    END IF;
    IF now_live <> was OR bytes <> 0 THEN
        PERFORM hairtrigger_count_usage(
            CASE WHEN TG_OP = 'DELETE' THEN OLD.account_id ELSE NEW.account_id END,
            0, now_live - was, bytes);
    END IF;
    RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION hairtrigger_count_usage(uuid, integer, integer, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION hairtrigger_workflow_usage() FROM PUBLIC;
REVOKE ALL ON FUNCTION hairtrigger_trigger_usage() FROM PUBLIC;

-- Only changes that can move the use fire: a status change or a sync-version stamp does not
-- touch (or lock) the usage row.
CREATE TRIGGER workflows_usage AFTER INSERT OR DELETE ON workflows
    FOR EACH ROW EXECUTE FUNCTION hairtrigger_workflow_usage();
CREATE TRIGGER workflows_usage_update AFTER UPDATE OF deleted_at ON workflows
    FOR EACH ROW WHEN (OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
    EXECUTE FUNCTION hairtrigger_workflow_usage();
CREATE TRIGGER workflow_triggers_usage AFTER INSERT OR DELETE ON workflow_triggers
    FOR EACH ROW EXECUTE FUNCTION hairtrigger_trigger_usage();
CREATE TRIGGER workflow_triggers_usage_update AFTER UPDATE OF deleted_at, index_bytes
    ON workflow_triggers FOR EACH ROW
    WHEN (OLD.deleted_at IS DISTINCT FROM NEW.deleted_at
          OR OLD.index_bytes IS DISTINCT FROM NEW.index_bytes)
    EXECUTE FUNCTION hairtrigger_trigger_usage();

GRANT SELECT ON account_usage TO hairtrigger_api;
ALTER TABLE account_usage ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON account_usage USING (account_id = hairtrigger_account());
