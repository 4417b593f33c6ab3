"""Through the local stack: poison address traits and personalisation that fails for one user's
traits cost only those users; the chunk is delivered, counted and never dead-lettered."""

from __future__ import annotations

import uuid

import boto3
import pytest

from tests.integration.test_delivery import emails_titled, identify, static_segment

pytestmark = pytest.mark.integration

BODY = "Hi {{ user.first_name | default('there') }} {{ 'x' * (user.stars | default(1)) }}"


def test_poison_emails_are_skipped_a_budget_breaking_user_fails_and_everyone_else_gets_the_email(stack):
    run = uuid.uuid4().hex[:8]
    good = {f"ok-{run}-{i}": {"email": f"ok-{run}-{i}@example.org", "first_name": f"F{i}"} for i in range(3)}
    international = {f"intl-{run}": {"email": f"intl-{run}@bücher.example"}}
    poison = {
        f"sep-{run}": {"email": "bad@example.com\u2028Bcc:x@evil.example"},
        f"word-{run}": {"email": "=?utf-8?q?bad?=@example.com"},
        f"utf8-{run}": {"email": "zoë@example.com"},
    }
    over_budget = {f"stars-{run}": {"email": f"stars-{run}@example.org", "stars": 200_000_000}}
    identify(stack, {**good, **international, **poison, **over_budget})
    stack.drain()
    segment_id = static_segment(stack, [*good, *international, *poison, *over_budget])
    title = f"Hardening {run}"
    response = stack.admin.post(
        "/v1/announcements",
        json={"title": title, "body": BODY, "audience": {"segments": [segment_id]}, "channels": ["email"]},
    )
    assert response.status_code == 201, response.text
    announcement_id = response.json()["id"]
    stack.settle()

    received = sorted(address for e in emails_titled(stack, title) for address in e["to"])
    assert received == sorted([*(t["email"] for t in good.values()), f"intl-{run}@xn--bcher-kva.example"])
    counts = stack.counts_when(
        announcement_id, lambda c: c["pending"] == 0 and c["in_doubt"] == 0, timeout=30
    )
    assert counts["planned"] == 8 and counts["sent"] == 4
    assert counts["skipped"]["invalid_address"] == 3 and counts["failed"] == 1
    assert counts["planned"] == (
        counts["sent"] + counts["skipped_total"] + counts["failed"] + counts["in_doubt"] + counts["pending"]
    )
    assert not any(announcement_id in body for body in _dead_letters(stack))


def test_a_body_over_the_personalisation_budget_is_rejected_when_the_announcement_is_created(stack):
    segment_id = static_segment(stack, [f"anyone-{uuid.uuid4().hex[:6]}"])
    response = stack.admin.post(
        "/v1/announcements",
        json={
            "title": "Loops",
            "body": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "audience": {"segments": [segment_id]},
        },
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "personalisation_budget" and error["details"][0]["pointer"] == "/body"


def _dead_letters(stack) -> list[str]:
    sqs = boto3.client("sqs", endpoint_url=stack.aws_endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    dlq = sqs.get_queue_url(QueueName="EmailDeadLetterQueue")["QueueUrl"]
    # VisibilityTimeout=0: look without hiding them from other tests reading the same queue
    received = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [m["Body"] for m in received.get("Messages", [])]
