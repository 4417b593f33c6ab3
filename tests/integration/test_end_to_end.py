"""End to end through HTTP: Segment ingest → rule segment → announcement → outbox → one-click → skip."""

from __future__ import annotations

import email
import email.policy
import re
import uuid

import pytest

pytestmark = pytest.mark.integration


def test_fifty_users_to_a_segment_to_the_outbox_and_one_click_unsubscribe(stack):
    run = uuid.uuid4().hex[:8]
    users = {
        f"e2e-{run}-{i}": {
            "email": f"e2e-{run}-{i}@example.org",
            "plan": "pro" if i % 2 else "free",
            "cohort": run,
        }
        for i in range(50)
    }
    batch = [{"type": "identify", "userId": u, "traits": t} for u, t in users.items()]
    batch += [{"type": "track", "userId": u, "event": "report_viewed"} for u in list(users)[:40]]
    assert stack.http.post("/v1/batch", json={"batch": batch}, auth=(stack.write_key, "")).status_code == 200
    stack.drain()

    rule = {
        "all": [
            {"trait": "cohort", "op": "eq", "value": run},
            {"trait": "plan", "op": "eq", "value": "pro"},
            {"event": "report_viewed", "count": {"gte": 1}, "within": "7d"},
        ]
    }
    created = stack.admin.post("/v1/segments", json={"name": f"pro reporters {run}", "rule": rule})
    assert created.status_code in (201, 202), created.text  # 202: backfill running
    segment_id = created.json()["segment_id"]
    stack.drain()
    expected = sorted(t["email"] for i, t in enumerate(users.values()) if i % 2 and i < 40)
    assert len(expected) == 20

    topic = f"reports-{run}"
    title = f"Reports are faster {run}"
    response = stack.admin.post(
        "/v1/announcements",
        json={
            "title": title,
            "body": "Hello **{{ user.plan }}** user.",
            "audience": {"segments": [segment_id]},
            "channels": ["email"],
            "topic": topic,
        },
    )
    assert response.status_code == 201, response.text
    announcement_id = response.json()["id"]
    stack.settle(timeout=60)

    sent = [e for e in stack.outbox() if e["subject"] == title]
    assert sorted(a for e in sent for a in e["to"]) == expected  # the right users, exactly once each
    parsed = email.message_from_string(sent[0]["raw"], policy=email.policy.default)
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    counts = stack.counts_when(announcement_id, lambda c: c["sent"] == 20)
    assert counts["planned"] == 20 and counts["sent"] == 20, counts

    leaver = next(e for e in sent if e["to"] == [expected[0]])
    header = email.message_from_string(leaver["raw"], policy=email.policy.default)["List-Unsubscribe"]
    path = re.search(r"<https://[^/>]+(/u/[A-Za-z0-9_-]+)>", header).group(1)
    one_click = stack.http.post(
        path,
        content="List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert one_click.status_code == 200

    second_title = f"Second note {run}"
    response = stack.admin.post(
        "/v1/announcements",
        json={
            "title": second_title,
            "body": "Again.",
            "audience": {"segments": [segment_id]},
            "channels": ["email"],
            "topic": topic,
        },
    )
    second_id = response.json()["id"]
    stack.settle(timeout=60)
    second = sorted(a for e in stack.outbox() if e["subject"] == second_title for a in e["to"])
    assert second == expected[1:]
    counts = stack.counts_when(second_id, lambda c: c["sent"] + c["skipped_total"] == 20)
    assert counts["skipped"]["unsubscribed"] == 1 and counts["sent"] == 19
