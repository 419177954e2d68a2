-- Account-level configuration changes (timezone, business hours) join the audit trail: their
-- rows have no workflow.
ALTER TABLE trigger_audit_log ALTER COLUMN workflow_id DROP NOT NULL;
CREATE INDEX trigger_audit_log_account_level ON trigger_audit_log (account_id, id)
    WHERE workflow_id IS NULL;
