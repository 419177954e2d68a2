"""The problem types every error document's `type` points at: what each one means."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.guard import GuardedRoute
from api.problems import PROBLEM_RESPONSES, TYPES, ApiError
from api.schemas import ProblemType
from pipelines import errors

router = APIRouter(
    prefix="/problems", tags=["problems"], route_class=GuardedRoute, responses=PROBLEM_RESPONSES
)
_BY_SLUG = {errors.problem_slug(title): title for title in errors.DESCRIPTIONS}


def _described(title: str) -> dict[str, Any]:
    return {"type": TYPES[title], "title": title, "description": errors.DESCRIPTIONS[title]}


@router.get("", response_model=list[ProblemType])
async def list_problem_types() -> Any:
    """Every problem type the API answers with. Public, like the catalog."""
    return [_described(title) for title in errors.DESCRIPTIONS]


@router.get("/{slug}", response_model=ProblemType)
async def get_problem_type(slug: str) -> Any:
    """What a problem document's `type` means and what to do about it."""
    title = _BY_SLUG.get(slug)
    if title is None:
        raise ApiError(404, errors.NOT_FOUND, f"no problem type {slug!r}")
    return _described(title)
