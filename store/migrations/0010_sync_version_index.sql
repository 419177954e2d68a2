-- Partition actors re-read the triggers changed since a version (a config push that never
-- arrived): an index probe, not a scan.
CREATE INDEX workflow_triggers_sync_version ON workflow_triggers (sync_version);
