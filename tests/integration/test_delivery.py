"""Delivery on the local stack, through real HTTP: SES outbox, MIME, one-click, feedback, DLQ."""

from __future__ import annotations

import email
import email.policy
import re
import uuid

import boto3
import pytest

pytestmark = pytest.mark.integration


def identify(stack, users: dict[str, dict]) -> None:
    batch = [{"type": "identify", "userId": user_id, "traits": traits} for user_id, traits in users.items()]
    response = stack.http.post("/v1/batch", json={"batch": batch}, auth=(stack.write_key, ""))
    assert response.status_code == 200, response.text


def static_segment(stack, members: list[str]) -> str:
    response = stack.admin.post(
        "/v1/segments", json={"name": f"static {uuid.uuid4().hex[:6]}", "members": members}
    )
    assert response.status_code == 201, response.text
    return response.json()["segment_id"]


def announce(stack, segment_id: str, title: str, topic: str = "product-updates") -> str:
    response = stack.admin.post(
        "/v1/announcements",
        json={
            "title": title,
            "body": "Hi {{ user.first_name | default('there') }}, **reports** are new.",
            "audience": {"segments": [segment_id]},
            "channels": ["email"],
            "topic": topic,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def emails_titled(stack, title: str) -> list[dict]:
    return [e for e in stack.outbox() if e["subject"].startswith(title)]


def test_an_announcement_reaches_the_outbox_as_multipart_with_unsubscribe_headers_and_counts_add_up(stack):
    run = uuid.uuid4().hex[:8]
    users = {f"dl-{run}-{i}": {"email": f"dl-{run}-{i}@example.org", "first_name": f"F{i}"} for i in range(3)}
    identify(stack, users)
    stack.drain()
    segment_id = static_segment(stack, list(users))
    title = f"Delivery {run}"
    announcement_id = announce(stack, segment_id, title)
    stack.settle()

    sent = emails_titled(stack, title)
    assert sorted(address for e in sent for address in e["to"]) == sorted(t["email"] for t in users.values())
    parsed = email.message_from_string(sent[0]["raw"], policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert re.match(r"<https://[^>]+/u/[A-Za-z0-9_-]+>, <mailto:[^>]+>", parsed["List-Unsubscribe"])
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    counts = stack.counts_when(announcement_id, lambda c: c["delivered"] == 3, timeout=20)
    assert counts["planned"] == 3 and counts["sent"] == 3 and counts["in_doubt"] == 0
    assert counts["delivered"] == 3  # the local stack's emulated SES Delivery events
    assert (
        counts["planned"]
        == counts["sent"]
        + counts["skipped_total"]
        + counts["failed"]
        + counts["in_doubt"]
        + counts["pending"]
    )


def test_one_click_over_http_unsubscribes_and_the_next_announcement_skips_with_unsubscribed(stack):
    run = uuid.uuid4().hex[:8]
    users = {f"oc-{run}-{i}": {"email": f"oc-{run}-{i}@example.org"} for i in range(2)}
    identify(stack, users)
    stack.drain()
    segment_id = static_segment(stack, list(users))
    topic = f"topic-{run}"
    announce(stack, segment_id, f"First {run}", topic=topic)
    stack.settle()

    first = next(e for e in emails_titled(stack, f"First {run}") if f"oc-{run}-0@example.org" in e["to"])
    header = email.message_from_string(first["raw"], policy=email.policy.default)["List-Unsubscribe"]
    path = re.search(r"<https://[^/>]+(/u/[A-Za-z0-9_-]+)>", header).group(1)
    page = stack.http.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert topic in page.text
    response = stack.http.post(
        path,
        content="List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    # Change a character in the middle: every bit of it is significant (the last character of
    # base64 may carry unused bits, so changing it can leave the decoded token the same).
    middle = len(path) // 2
    tampered = path[:middle] + ("B" if path[middle] != "B" else "C") + path[middle + 1 :]
    assert stack.http.get(tampered).status_code == 400

    second_id = announce(stack, segment_id, f"Second {run}", topic=topic)
    stack.settle()
    assert [e["to"] for e in emails_titled(stack, f"Second {run}")] == [[f"oc-{run}-1@example.org"]]
    counts = stack.counts_when(second_id, lambda c: c["sent"] + c["skipped_total"] == 2, timeout=20)
    assert counts["skipped"]["unsubscribed"] == 1 and counts["sent"] == 1, counts


def test_a_poison_message_on_the_email_queue_ends_in_the_dead_letter_queue(stack):
    sqs = boto3.client("sqs", endpoint_url=stack.aws_endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    queue = sqs.get_queue_url(QueueName="EmailQueue")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName="EmailDeadLetterQueue")["QueueUrl"]
    marker = f"poison-{uuid.uuid4().hex}"
    sqs.send_message(QueueUrl=queue, MessageBody=f'{{"v": 1, "oops": "{marker}"}}')
    stack.drain(timeout=60)
    bodies = []
    for _ in range(5):
        received = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        bodies += [m["Body"] for m in received.get("Messages", [])]
        if any(marker in b for b in bodies):
            break
    assert any(marker in b for b in bodies)
