"""Fixtures for the segments service: profiles written straight to the table, API events, a fixed clock."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer

from cohortcast.profiles.behaviour import epoch_hour
from cohortcast.storage.profiles import Behaviour, ProfileRecord
from tests.conftest import TEST_NOW

NOW = TEST_NOW
THIS_HOUR = epoch_hour(NOW)


@pytest.fixture(autouse=True)
def fresh_registry() -> Iterator[None]:
    from cohortcast.segments import registry

    registry.invalidate()
    yield
    registry.invalidate()


@pytest.fixture
def seg(aws):
    """The segments domain against moto, with queue messages collected instead of sent."""
    return SegmentsWorld()


class SegmentsWorld:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def take(self) -> list[dict[str, Any]]:
        sent, self.sent = self.sent, []
        return sent


def profile(
    user_id: str,
    *,
    traits: dict[str, Any] | None = None,
    first_seen_days: float = 60,
    last_seen_days: float | None = 0.1,
    events: dict[str, dict[int, int]] | None = None,
    counters: dict[str, dict[int, int]] | None = None,
    now: datetime = NOW,
) -> ProfileRecord:
    """A profile `first_seen_days` old; `events` maps name → {days ago: count}, in hour buckets."""
    hourly = {
        name: {THIS_HOUR - ago * 24: n for ago, n in days.items()} for name, days in (events or {}).items()
    }
    return ProfileRecord(
        pk=f"U#{user_id}",
        user_id=user_id,
        anonymous_id=None,
        traits=traits or {},
        first_seen=now - timedelta(days=first_seen_days),
        last_seen=None if last_seen_days is None else now - timedelta(days=last_seen_days),
        behaviour=Behaviour(hourly=hourly, counters=counters or {}),
        created_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:00.000Z",
    )


def save(record: ProfileRecord) -> ProfileRecord:
    from cohortcast.storage import profiles as profile_store

    profile_store.save(record)
    return record


def stream_record(record: ProfileRecord | None, *, pk: str | None = None, seq: str = "1") -> dict[str, Any]:
    """A ProfilesTable stream record as Lambda delivers it (Binary base64-encoded); None = REMOVE."""
    from cohortcast.storage import profiles as profile_store

    serializer = TypeSerializer()

    def image(item: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for name, value in item.items():
            typed = serializer.serialize(value)
            if "B" in typed:
                typed = {"B": base64.b64encode(bytes(typed["B"])).decode()}
            out[name] = typed
        return out

    key_pk = record.pk if record else pk
    dynamodb: dict[str, Any] = {
        "Keys": {"pk": {"S": key_pk}, "sk": {"S": "PROFILE"}},
        "SequenceNumber": seq,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
        "ApproximateCreationDateTime": NOW.timestamp(),
    }
    if record is not None:
        dynamodb["NewImage"] = image(profile_store.to_item(record))
    return {
        "eventID": f"event-{seq}",
        "eventName": "REMOVE" if record is None else "MODIFY",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": dynamodb,
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/ProfilesTable/stream/2026",
    }


def api_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    query: str = "",
    content_type: str = "application/json",
    scope: str = "admin",
) -> dict[str, Any]:
    if body is None:
        raw = None
    elif isinstance(body, str):
        raw = body
    else:
        raw = json.dumps(body)
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "queryStringParameters": dict(p.split("=", 1) for p in query.split("&")) if query else None,
        "headers": {"content-type": content_type, "host": "api.example.com"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "api.example.com",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "pytest",
            },
            "requestId": "test",
            "routeKey": "$default",
            "stage": "$default",
            "time": "24/Nov/2026:09:00:00 +0000",
            "timeEpoch": 1795510800000,
            "authorizer": {"lambda": {"scope": scope, "keyId": "test"}},
        },
        "body": raw,
        "isBase64Encoded": False,
    }


@pytest.fixture
def api(aws, lambda_context, monkeypatch):
    """Call the api function's real handler: api("GET", "/v1/segments") → (status, json body)."""
    from functions.api import app as api_app

    def call(method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        response = api_app.lambda_handler(api_event(method, path, body, **kwargs), lambda_context)
        return response["statusCode"], json.loads(response["body"]) if response.get("body") else None

    return call
