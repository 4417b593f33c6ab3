"""Segments through real HTTP on the local stack: real time, time passing, backfill, explain."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def _track(stack, user_id: str, event: str, *, days_ago: float = 0, traits: dict | None = None) -> None:
    """Segment API calls with the write key (HTTP Basic, as Segment's SDKs send it)."""
    auth = {"Authorization": "Basic " + base64.b64encode(f"{stack.write_key}:".encode()).decode()}
    moment = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
    batch: list[dict[str, Any]] = []
    if traits:
        batch.append({"type": "identify", "userId": user_id, "traits": traits, "timestamp": moment})
    batch.append({"type": "track", "userId": user_id, "event": event, "timestamp": moment})
    response = stack.http.post("/v1/batch", json={"batch": batch}, headers=auth)
    assert response.status_code == 200, response.text


def _create(stack, rule: dict[str, Any], name: str = "segment") -> dict[str, Any]:
    response = stack.admin.post("/v1/segments", json={"name": name, "rule": rule})
    assert response.status_code == 202, response.text
    return response.json()


def _members(stack, segment_id: str) -> set[str]:
    response = stack.admin.get(f"/v1/segments/{segment_id}/members", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return {m["user_id"] for m in response.json()["members"]}


def _tag() -> str:
    return uuid.uuid4().hex[:10]


def test_user_enters_a_segment_in_real_time(stack) -> None:
    tag = _tag()
    segment = _create(
        stack,
        {
            "all": [
                {"trait": "cohort", "op": "eq", "value": tag},
                {"event": "login", "count": {"gte": 2}, "within": "7d"},
            ]
        },
    )
    stack.drain()
    user = f"rt-{tag}"
    _track(stack, user, "login", traits={"cohort": tag})
    stack.drain()
    assert _members(stack, segment["segment_id"]) == set()
    _track(stack, user, "login")
    stack.drain()
    assert _members(stack, segment["segment_id"]) == {user}
    history = stack.admin.get(f"/v1/segments/{segment['segment_id']}/history").json()
    assert [(t["user_id"], t["kind"], t["reason"]) for t in history["transitions"]] == [
        (user, "enter", "event")
    ]
    assert stack.admin.get(f"/v1/segments/{segment['segment_id']}").json()["size"] == 1


def test_time_passing_moves_at_risk_users_in_and_active_users_out(stack) -> None:
    tag = _tag()
    segment = _create(
        stack,
        {"all": [{"trait": "cohort", "op": "eq", "value": tag}, {"last_seen": {"more_than_ago": "14d"}}]},
        name="At risk",
    )
    sid = segment["segment_id"]
    stack.drain()
    # Given one user last seen 20 days ago (already at risk) and one seen 10 days ago (not yet)
    _track(stack, f"old-{tag}", "login", days_ago=20, traits={"cohort": tag})
    _track(stack, f"mid-{tag}", "login", days_ago=10, traits={"cohort": tag})
    stack.drain()
    assert _members(stack, sid) == {f"old-{tag}"}
    # When the clock moves 5 days ahead and the scheduled sweep runs
    later = (datetime.now(UTC) + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = stack.run_schedule("EvaluateFunction", later)
    assert result["invoked"][0]["result"]["entered"] >= 1
    # Then the user who went quiet for 15 days has entered, by time
    assert _members(stack, sid) == {f"old-{tag}", f"mid-{tag}"}
    reasons = {
        (t["user_id"], t["reason"])
        for t in stack.admin.get(f"/v1/segments/{sid}/history").json()["transitions"]
    }
    assert (f"mid-{tag}", "time") in reasons
    # And a user who comes back leaves at once
    _track(stack, f"old-{tag}", "login")
    stack.drain()
    assert _members(stack, sid) == {f"mid-{tag}"}
    sizes = stack.admin.get(f"/v1/segments/{sid}/history").json()["sizes"]
    assert sizes and sizes[-1]["size"] == 2


def test_editing_a_segment_backfills_it(stack) -> None:
    tag = _tag()
    for i, plan in enumerate(["pro", "pro", "free"]):
        _track(stack, f"bf{i}-{tag}", "login", traits={"cohort": tag, "plan": plan})
    stack.drain()
    segment = _create(stack, {"trait": "cohort", "op": "eq", "value": tag})
    sid = segment["segment_id"]
    assert segment["backfill"]["state"] == "running"
    stack.drain()
    shown = stack.admin.get(f"/v1/segments/{sid}").json()
    assert shown["backfill"]["state"] == "done" and shown["size"] == 3
    edited = stack.admin.put(
        f"/v1/segments/{sid}",
        json={
            "rule": {
                "all": [
                    {"trait": "cohort", "op": "eq", "value": tag},
                    {"trait": "plan", "op": "eq", "value": "pro"},
                ]
            }
        },
    )
    assert edited.status_code == 200 and edited.json()["backfill"]["state"] == "running"
    stack.drain()
    shown = stack.admin.get(f"/v1/segments/{sid}").json()
    assert shown["backfill"]["state"] == "done" and shown["version"] == 2
    assert shown["size"] == 2
    assert _members(stack, sid) == {f"bf0-{tag}", f"bf1-{tag}"}


def test_explain_a_membership(stack) -> None:
    tag = _tag()
    user = f"ex-{tag}"
    _track(stack, user, "report_viewed", traits={"cohort": tag, "plan": "enterprise"})
    stack.drain()
    rule = {
        "all": [
            {"trait": "cohort", "op": "eq", "value": tag},
            {"trait": "plan", "op": "in", "value": ["pro", "enterprise"]},
            {"event": "report_viewed", "count": {"gte": 1}, "within": "30d"},
        ]
    }
    sid = _create(stack, rule)["segment_id"]
    stack.drain()
    explained = stack.admin.get(f"/v1/segments/{sid}/explain/{user}")
    assert explained.status_code == 200, explained.text
    body = explained.json()
    assert body["member"] is True and body["matches"] is True
    assert [child["value"] for child in body["rule"]["children"]] == [True, True, True]
    assert body["rule"]["children"][2]["detail"]["count"] == 1
    preview = stack.admin.post("/v1/segments/preview", json={"rule": rule}).json()
    assert preview["count"] == 1 and preview["sample"] == [user] and preview["exact"] is True


def test_bad_rules_and_unknown_segments_are_json_4xx(stack) -> None:
    bad = stack.admin.post("/v1/segments", json={"rule": {"trait": "plan", "op": "like", "value": "x"}})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["pointer"].startswith("/rule")
    assert stack.admin.get("/v1/segments/seg_unknown").status_code == 404
    assert stack.admin.get("/v1/segment-templates").status_code == 200
