-- Execution logs listed account-wide, newest first (GET /trigger-logs without filters).
CREATE INDEX trigger_execution_logs_account ON trigger_execution_logs (account_id, id);
