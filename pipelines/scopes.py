"""The API key scopes, in one place (docs/contract.md §4)."""

from __future__ import annotations

SCOPE_WORKFLOW_READ = "workflow:read"
SCOPE_WORKFLOW_EDIT = "workflow:edit"
SCOPE_EVENTS_WRITE = "events:write"
SCOPE_STATS_READ = "stats:read"  # deployment-wide figures: for operators, not every tenant
TENANT_SCOPES: tuple[str, ...] = (SCOPE_WORKFLOW_READ, SCOPE_WORKFLOW_EDIT, SCOPE_EVENTS_WRITE)
SCOPES: tuple[str, ...] = (*TENANT_SCOPES, SCOPE_STATS_READ)
