"""Every problem document names its type, and the type's URI describes it (RFC 9457 §3.1.1)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from pipelines import errors
from tests.support.factories import Tenant
from tests.support.problems import problem

MakeTenant = Callable[..., Tenant]


def _titles() -> list[str]:
    return [
        value for name, value in vars(errors).items() if name.isupper() and isinstance(value, str)
    ]


def test_every_title_has_a_description_and_its_own_slug() -> None:
    titles = _titles()
    assert len(titles) > 30
    assert set(titles) == set(errors.DESCRIPTIONS)
    slugs = [errors.problem_slug(t) for t in titles]
    assert len(set(slugs)) == len(slugs)
    assert errors.problem_slug("Maximum 20 filter conditions allowed") == (
        "maximum-20-filter-conditions-allowed"
    )


def test_a_problem_type_dereferences_to_its_description(tenant: MakeTenant, api_url: str) -> None:
    t = tenant()
    workflow = t.client.post("/workflows", json={"name": "w"}).json()
    bad = {
        "trigger_type": "contact",
        "trigger_event": "tag_added",
        "filters": {
            "logic": "AND",
            "conditions": [{"field": "tag", "operator": "resembles", "value": "x"}],
        },
    }
    response = t.client.post(f"/workflows/{workflow['id']}/trigger", json=bad)
    body = problem(response, 400, errors.INVALID_OPERATOR)
    described = httpx.get(response.url.join(body["type"]))  # a reference: resolve, no key
    assert described.status_code == 200, described.text
    assert described.json() == {
        "type": body["type"],
        "title": errors.INVALID_OPERATOR,
        "description": errors.DESCRIPTIONS[errors.INVALID_OPERATOR],
    }


def test_problem_types_are_listed_and_unknown_ones_are_a_problem(api_url: str) -> None:
    listed = httpx.get(f"{api_url}/api/v1/problems").json()
    assert [p["title"] for p in listed] == list(errors.DESCRIPTIONS)
    for item in listed:
        assert item["type"] == f"/api/v1/problems/{errors.problem_slug(item['title'])}"
    missing = httpx.get(f"{api_url}/api/v1/problems/no-such-thing")
    problem(missing, 404, errors.NOT_FOUND)
    unauthorized = httpx.get(f"{api_url}/api/v1/workflows")  # no key
    body = problem(unauthorized, 401, errors.UNAUTHORIZED)
    assert httpx.get(f"{api_url}{body['type']}").json()["title"] == errors.UNAUTHORIZED
