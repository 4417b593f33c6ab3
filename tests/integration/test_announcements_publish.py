"""Publish side end to end on the local stack: segment → announcement → SNS fan-out (now and at send_at)."""

import json
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fanout(stack):
    """A test queue subscribed to FanoutTopic in the emulator: every fan-out message lands here too."""
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    sns = session.client("sns", endpoint_url=stack.aws_endpoint)
    sqs = session.client("sqs", endpoint_url=stack.aws_endpoint)
    topic = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":FanoutTopic"))
    url = sqs.create_queue(QueueName="integration-fanout-observer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})

    def read(announcement_id: str) -> list[dict]:
        found = []
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages"
        ):
            for message in batch:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                body = json.loads(message["Body"])
                if body["announcement_id"] == announcement_id:
                    found.append(body)
        return found

    return read


@pytest.fixture(scope="module")
def segment(stack):
    response = stack.admin.post(
        "/v1/segments", json={"name": "publish-it", "members": [f"pub-user-{i}" for i in range(60)]}
    )
    assert response.status_code in (201, 202), response.text
    stack.drain()
    return response.json()["segment_id"]


def _wait_status(stack, announcement_id: str, status: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = stack.admin.get(f"/v1/announcements/{announcement_id}").json()
        if body["status"] == status or time.monotonic() > deadline:
            return body
        stack.drain()
        time.sleep(0.2)


def test_announcement_now_fans_out_every_member_once(stack, segment, fanout):
    response = stack.admin.post(
        "/v1/announcements",
        json={
            "title": "Hello",
            "body": "Hi {{ user.first_name | default('there') }}",
            "audience": {"segments": [segment]},
        },
        headers={"Idempotency-Key": f"publish-now-{segment}"},
    )
    assert response.status_code == 201, response.text
    announcement_id = response.json()["id"]
    view = _wait_status(stack, announcement_id, "sent")
    assert view["status"] == "sent"
    assert view["counts"]["planned"] == 60
    assert view["segments"][0]["segment_id"] == segment

    messages = fanout(announcement_id)
    recipients = [r["user_id"] for m in messages for r in m["recipients"]]
    assert sorted(set(recipients)) == sorted(f"pub-user-{i}" for i in range(60))
    assert all(m["channel"] == "email" and len(m["recipients"]) <= 50 for m in messages)

    again = stack.admin.post(
        "/v1/announcements",
        json={
            "title": "Hello",
            "body": "Hi {{ user.first_name | default('there') }}",
            "audience": {"segments": [segment]},
        },
        headers={"Idempotency-Key": f"publish-now-{segment}"},
    )
    assert again.json()["id"] == announcement_id


def test_scheduled_announcement_fires_at_send_at(stack, segment, fanout):
    send_at = datetime.now(UTC) + timedelta(hours=1)
    response = stack.admin.post(
        "/v1/announcements",
        json={
            "title": "Later",
            "body": "Soon",
            "audience": {"segments": [segment]},
            "send_at": send_at.isoformat(),
        },
    )
    assert response.status_code == 201, response.text
    announcement_id = response.json()["id"]
    assert response.json()["status"] == "scheduled"

    stack.run_schedule("PublishFunction", (send_at + timedelta(seconds=1)).isoformat())
    view = _wait_status(stack, announcement_id, "sent")
    assert view["status"] == "sent"
    assert len({r["user_id"] for m in fanout(announcement_id) for r in m["recipients"]}) == 60


def test_bad_announcements_are_rejected_over_http(stack, segment):
    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    cases = [
        {"title": "t", "body": "b"},
        {"title": "t", "body": "b", "audience": {"segments": ["seg_missing"]}},
        {"title": "t", "body": "", "audience": {"segments": [segment]}},
        {"title": "t", "body": "{% if %}", "audience": {"segments": [segment]}},
        {"title": "t", "body": "b", "audience": {"segments": [segment]}, "send_at": past},
        {"title": "t", "body": "b", "audience": {"segments": [segment]}, "channels": ["pigeon"]},
    ]
    for case in cases:
        response = stack.admin.post("/v1/announcements", json=case)
        assert response.status_code == 422, (case, response.text)
        assert set(response.json()["error"]) == {"code", "message", "details"}
