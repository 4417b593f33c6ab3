"""Schemathesis fuzzes every documented management route: bad input is a JSON 4xx, never a 5xx."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

pytestmark = pytest.mark.integration

EXAMPLES_PER_ROUTE = 12


def test_management_api_never_fails_with_a_server_error(stack):
    schema = schemathesis.openapi.from_url(f"{stack.base_url}/openapi.json")
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    failures: list[str] = []
    statuses: dict[int, int] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    # Ingest routes have their own tests (gzip, limits, the Segment SDK); fuzz what admins call.
    operations = [op for op in operations if "ingest" not in (op.tags or [])]
    assert len(operations) >= 15, [op.label for op in operations]

    for operation in operations:

        @settings(max_examples=EXAMPLES_PER_ROUTE, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def call(case):
            response = case.call(base_url=stack.base_url, headers=headers)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} → {response.status_code}: {response.text[:300]}"
                )
            elif response.status_code >= 400:
                error = response.json().get("error") or {}
                if not (error.get("code") and error.get("message")):
                    failures.append(
                        f"{case.method} {case.formatted_path}: not our error shape: {response.text[:300]}"
                    )

        call()
    assert sum(statuses.values()) >= len(operations) * 3, statuses  # every route really exercised
    assert failures == [], "\n".join(failures[:20])
