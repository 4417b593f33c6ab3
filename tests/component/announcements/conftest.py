"""Fixtures for the publish side: a fixed clock, segments with members, the API handler, the bus."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock(clock):
    """The suite's fixed clock, moved to this package's NOW."""
    clock.move_to(NOW)
    return NOW


@pytest.fixture
def segments(aws):
    """segments("seg_a", ["u1", "u2"]) stores a static segment with those members."""
    from cohortcast.segments import registry
    from cohortcast.storage import keys
    from cohortcast.storage import segments as segment_store
    from cohortcast.workspace import service as workspace

    registry.invalidate()

    def make(segment_id: str, user_ids: list[str], *, rule: dict | None = None) -> str:
        if segment_store.get_definition(segment_id) is None:
            segment_store.save_definition(
                segment_store.SegmentDefinition(
                    segment_id=segment_id,
                    name=segment_id,
                    kind="dynamic" if rule else "static",
                    rule=rule,
                    created_at="2026-11-01T00:00:00.000Z",
                    updated_at="2026-11-01T00:00:00.000Z",
                )
            )
        for user_id in user_ids:
            pk = keys.profile_pk(user_id=user_id)
            change = segment_store.Change(segment_id, pk, "enter", "2026-11-01T00:00:00.000Z", "added")
            segment_store.apply_change(change, user_id, workspace.expires_at(NOW))
            segment_store.update_state(pk, entered=[segment_id], updated_at="2026-11-01T00:00:00.000Z")
        return segment_id

    yield make
    registry.invalidate()


@pytest.fixture
def profiles(aws):
    """profiles({"u1": {"email": "u1@example.com"}}) stores identified users with those traits."""
    from cohortcast.storage import keys
    from cohortcast.storage import profiles as profile_store

    def make(traits_by_user: dict[str, dict[str, Any]]) -> None:
        for user_id, traits in traits_by_user.items():
            record = profile_store.new_record(keys.profile_pk(user_id=user_id))
            record.traits = dict(traits)
            record.first_seen = record.last_seen = NOW
            record.created_at = record.updated_at = "2026-11-01T00:00:00.000Z"
            profile_store.save(record)

    return make


@pytest.fixture
def fanout_queue(aws):
    """A queue subscribed to FanoutTopic (raw delivery): read what the publish path fanned out."""
    import boto3

    sqs, sns = boto3.client("sqs"), boto3.client("sns")
    url = sqs.create_queue(QueueName="test-fanout")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=aws.refs["FanoutTopic"],
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true"},
    )

    def read() -> list[dict[str, Any]]:
        found = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
            ).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                body = json.loads(message["Body"])
                body["_channel_attribute"] = message["MessageAttributes"]["channel"]["StringValue"]
                found.append(body)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    return read


def publish_messages(aws) -> list[dict[str, Any]]:
    """Take every message waiting on the publish queue (FIFO, so one group at a time)."""
    import boto3

    sqs = boto3.client("sqs")
    url = aws.url("PublishQueue")
    taken = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not batch:
            return taken
        for message in batch:
            taken.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def api_event(method: str, path: str, body: Any = None, *, query: str = "", headers: dict | None = None):
    raw = None if body is None else body if isinstance(body, str) else json.dumps(body)
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "queryStringParameters": dict(p.split("=", 1) for p in query.split("&")) if query else None,
        "headers": {"content-type": "application/json", "host": "api.example.com", **(headers or {})},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "api.example.com",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": "pytest"},
            "requestId": "test",
            "routeKey": "$default",
            "stage": "$default",
            "time": "23/Nov/2026:09:00:00 +0000",
            "timeEpoch": int(NOW.timestamp() * 1000),
            "authorizer": {"lambda": {"scope": "admin", "keyId": "test"}},
        },
        "body": raw,
        "isBase64Encoded": False,
    }  # fmt: skip


@pytest.fixture
def api(aws, lambda_context, clock):
    """api("POST", "/v1/announcements", body, headers=...) → (status, json) through the real handler."""
    from functions.api import app as api_app

    def call(method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        response = api_app.lambda_handler(api_event(method, path, body, **kwargs), lambda_context)
        return response["statusCode"], json.loads(response["body"]) if response.get("body") else None

    return call
