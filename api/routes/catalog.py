"""The trigger catalog: what can start a workflow, and how filters are written."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.guard import GuardedRoute
from pipelines import catalog, filters

router = APIRouter(tags=["catalog"], route_class=GuardedRoute)

_VALUE_KINDS = {
    **dict.fromkeys(filters.SCALAR_OPS, "text, number or boolean"),
    **dict.fromkeys(filters.TEXT_OPS, "text or number"),
    **dict.fromkeys(filters.ORDER_OPS, "number, numeric text or ISO date"),
    **dict.fromkeys(filters.LIST_OPS, "non-empty list of text, numbers or booleans"),
    **dict.fromkeys(filters.NO_VALUE_OPS, "none"),
}


def _catalog() -> dict[str, Any]:
    return {
        "categories": [
            {
                "trigger_type": category,
                "events": [
                    {
                        "trigger_event": e.name,
                        "event_type": e.event_type,
                        "fields": list(e.fields),
                        "identifying_fields": list(e.identifying),
                        "description": e.description,
                    }
                    for e in catalog.TRIGGER_EVENTS
                    if e.category == category
                ],
            }
            for category in catalog.CATEGORIES
        ],
        "operators": [
            {
                "operator": op,
                "value": _VALUE_KINDS[op],
                "update_events_only": op in filters.CHANGE_OPS,
            }
            for op in filters.OPERATORS
        ],
        "limits": {"max_conditions": filters.MAX_CONDITIONS, "max_depth": filters.MAX_DEPTH},
    }


_CATALOG = _catalog()


@router.get("/catalog")
async def get_catalog() -> dict[str, Any]:
    """Categories, events, their fields and identifying fields, and the filter operators.

    Public: it describes the product, not any account."""
    return _CATALOG
