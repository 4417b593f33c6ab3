"""Rules mean what they say, through real HTTP on the local stack: `where` conditions of unsaved
rules count the raw events, windows are exact to the hour, and a segment's size is its members."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def _send(stack, batch: list[dict[str, Any]]) -> None:
    auth = {"Authorization": "Basic " + base64.b64encode(f"{stack.write_key}:".encode()).decode()}
    response = stack.http.post("/v1/batch", json={"batch": batch}, headers=auth)
    assert response.status_code == 200, response.text


def _exports(stack, tag: str, formats: dict[str, str], ago: timedelta = timedelta(hours=2)) -> None:
    at = (datetime.now(UTC) - ago).isoformat()
    batch: list[dict[str, Any]] = []
    for user_id, fmt in formats.items():
        traits = {"cohort": tag, "email": f"{user_id}@example.org"}
        batch.append({"type": "identify", "userId": user_id, "traits": traits, "timestamp": at})
        batch.append(
            {
                "type": "track",
                "userId": user_id,
                "event": "export",
                "properties": {"format": fmt},
                "timestamp": at,
            }
        )
    _send(stack, batch)


def _exported_csv(tag: str) -> dict[str, Any]:
    return {
        "all": [
            {"trait": "cohort", "op": "eq", "value": tag},
            {
                "event": "export",
                "where": {"property": "format", "op": "eq", "value": "csv"},
                "count": {"gte": 1},
                "within": "7d",
            },
        ]
    }


def test_preview_dry_run_and_inline_announcement_count_a_where_condition(stack) -> None:
    tag = uuid.uuid4().hex[:10]
    csv_user, pdf_user = f"csv-{tag}", f"pdf-{tag}"
    _exports(stack, tag, {csv_user: "csv", pdf_user: "pdf"})
    stack.drain()

    preview = stack.admin.post("/v1/segments/preview", json={"rule": _exported_csv(tag)})
    assert preview.status_code == 200, preview.text
    assert preview.json()["count"] == 1 and preview.json()["sample"] == [csv_user]

    announcement = {
        "title": f"CSV tips {tag}",
        "body": "Hello",
        "audience": {"rule": _exported_csv(tag)},
        "channels": ["email"],
    }
    dry_run = stack.admin.post("/v1/announcements", params={"dry_run": "true"}, json=announcement)
    assert dry_run.status_code == 200, dry_run.text
    assert dry_run.json()["audience_size"] == 1

    created = stack.admin.post("/v1/announcements", json=announcement)
    assert created.status_code == 201, created.text
    stack.settle()
    counts = stack.counts_when(created.json()["id"], lambda c: c["sent"] == 1, timeout=20)
    assert counts["planned"] == 1 and counts["sent"] == 1
    assert [e["to"] for e in stack.outbox() if e["subject"] == announcement["title"]] == [
        [f"{csv_user}@example.org"]
    ]


def test_an_event_just_over_the_window_does_not_count_and_sub_hour_windows_are_rejected(stack) -> None:
    tag = uuid.uuid4().hex[:10]
    _exports(stack, tag, {f"old-{tag}": "csv"}, ago=timedelta(days=7, minutes=65))
    _exports(stack, tag, {f"new-{tag}": "csv"}, ago=timedelta(days=6, hours=22))
    stack.drain()
    within_7d = {
        "all": [
            {"trait": "cohort", "op": "eq", "value": tag},
            {"event": "export", "count": {"gte": 1}, "within": "7d"},
        ]
    }
    preview = stack.admin.post("/v1/segments/preview", json={"rule": within_7d}).json()
    assert preview["sample"] == [f"new-{tag}"]

    half_hour = {"event": "export", "count": {"gte": 1}, "within": "30m"}
    rejected = stack.admin.post("/v1/segments", json={"name": "x", "rule": half_hour})
    assert rejected.status_code == 422, rejected.text
    assert rejected.json()["error"]["details"][0]["pointer"] == "/rule/within"


def test_member_list_pages_to_exactly_the_size_after_a_backfill_and_real_time_updates(stack) -> None:
    tag = uuid.uuid4().hex[:10]
    users = [f"sz-{tag}-{i:02d}" for i in range(40)]
    _send(
        stack,
        [{"type": "identify", "userId": u, "traits": {"cohort": tag, "plan": "pro"}} for u in users[:30]],
    )
    stack.drain()
    rule = {
        "all": [{"trait": "cohort", "op": "eq", "value": tag}, {"trait": "plan", "op": "eq", "value": "pro"}]
    }
    created = stack.admin.post("/v1/segments", json={"name": f"pro {tag}", "rule": rule})
    assert created.status_code == 202, created.text
    segment_id = created.json()["segment_id"]
    # Real-time updates while the backfill runs: some leave, new ones arrive
    _send(stack, [{"type": "identify", "userId": u, "traits": {"plan": "free"}} for u in users[:10]])
    _send(
        stack,
        [{"type": "identify", "userId": u, "traits": {"cohort": tag, "plan": "pro"}} for u in users[30:]],
    )
    stack.drain()

    paged, cursor = [], None
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = stack.admin.get(f"/v1/segments/{segment_id}/members", params=params).json()
        paged += [m["user_id"] for m in page["members"]]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert sorted(paged) == sorted(users[10:])
    assert stack.admin.get(f"/v1/segments/{segment_id}").json()["size"] == len(paged) == 30
