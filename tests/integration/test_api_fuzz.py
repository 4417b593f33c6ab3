"""Schemathesis fuzzes every documented route over HTTP: bad input is a JSON 4xx, never a 5xx."""

import base64

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

pytestmark = pytest.mark.integration

EXAMPLES_PER_ROUTE = 12


def _fuzz(stack, *, ingest: bool, headers: dict[str, str]) -> dict[int, int]:
    """Call each route (ingest or management) with generated input; return the status tally."""
    schema = schemathesis.openapi.from_url(f"{stack.base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [op for op in operations if ("ingest" in (op.tags or [])) == ingest]
    failures: list[str] = []
    statuses: dict[int, int] = {}

    for operation in operations:

        @settings(max_examples=EXAMPLES_PER_ROUTE, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def call(case):
            response = case.call(base_url=stack.base_url, headers=headers)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            where = f"{case.method} {case.formatted_path}"
            if response.status_code >= 500:
                failures.append(f"{where} → {response.status_code}: {response.text[:300]}")
            elif response.status_code >= 400 and not (response.json().get("error") or {}).get("message"):
                failures.append(f"{where}: not the JSON error shape: {response.text[:300]}")

        call()
    assert failures == [], "\n".join(failures[:20])
    assert sum(statuses.values()) >= len(operations) * 3, statuses  # every route really exercised
    return statuses


def test_management_routes_never_fail_with_a_server_error(stack):
    statuses = _fuzz(stack, ingest=False, headers={"Authorization": f"Bearer {stack.admin_key}"})
    assert any(400 <= status < 500 for status in statuses)


def test_ingest_routes_never_fail_with_a_server_error(stack):
    basic = base64.b64encode(f"{stack.write_key}:".encode()).decode()
    statuses = _fuzz(stack, ingest=True, headers={"Authorization": f"Basic {basic}"})
    assert 400 in statuses  # generated objects mostly lack userId/anonymousId
