"""Ingest while DynamoDB throttles ~30% of its calls (tests/faults.py)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.component.segments_service.conftest import api_event

USERS = [f"thr-{i}" for i in range(30)]
BATCHES, PER_BATCH = 24, 25
CLIENT_ATTEMPTS_DURING_THE_STORM = 3


def post(lambda_context, path, body, scope="write", query=""):
    from functions.api import app as api_app
    from functions.ingest import app as ingest_app

    event = api_event("POST" if body is not None else "GET", path, body, query=query)
    event["requestContext"]["authorizer"]["lambda"]["scope"] = scope
    response = (ingest_app if scope == "write" else api_app).lambda_handler(event, lambda_context)
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def track(user_id, message_id):
    return {"type": "track", "userId": user_id, "event": "login", "messageId": message_id}


def get(lambda_context, path, query=""):
    return post(lambda_context, path, None, scope="admin", query=query)


@pytest.mark.parametrize("lost_responses", [0.0, 0.1], ids=["throttling", "and-lost-answers"])
def test_a_client_that_retries_5xx_gets_every_event_stored_and_counted_once(
    dynamodb_faults, lambda_context, lost_responses
):
    """Given DynamoDB throttles ~30% of calls for a while (botocore retries each call up to six
    times; what gets past that reaches our code), and in the second case also loses the answer
    to 10% of the writes it applied (botocore retries those too, into their own first attempt),
    When an app sends 24 batches of 25 events for 30 users and, like every Segment SDK, re-sends
    a batch with the same messageIds when it gets a 5xx (three times at once, the rest once the
    storm has passed),
    Then the app sees 200s (with lost answers also 5xx, never a 4xx), and afterwards each user's
    profile counts and event list hold each event exactly once: nothing accepted is lost,
    nothing is counted twice, also for batches that failed half-way."""
    dynamodb_faults.lost_responses = lost_responses
    sent: Counter[str] = Counter()
    later, server_errors = [], 0
    for b in range(BATCHES):
        batch = [track(USERS[(b * PER_BATCH + i) % len(USERS)], f"msg-{b}-{i}") for i in range(PER_BATCH)]
        if b == 0:  # an identify that merges an anonymous history
            batch[0] = {
                "type": "identify",
                "userId": USERS[0],
                "anonymousId": "anon-thr",
                "messageId": "msg-0-0",
            }
        sent.update(m["userId"] for m in batch if m["type"] == "track")
        for _ in range(CLIENT_ATTEMPTS_DURING_THE_STORM):
            status, _answer = post(lambda_context, "/v1/batch", {"batch": batch})
            if status == 200:
                break
            assert status >= 500, _answer  # a fault is never blamed on the client
            server_errors += 1
        else:
            later.append(batch)
    storm_share = dynamodb_faults.share

    dynamodb_faults.rate = dynamodb_faults.lost_responses = (
        0.0  # the storm passes; the SDK flushes what it still holds
    )
    for batch in later:
        status, answer = post(lambda_context, "/v1/batch", {"batch": batch})
        assert status == 200, answer

    for user_id in USERS:
        status, profile = get(lambda_context, f"/v1/users/{user_id}")
        assert status == 200, profile
        assert sum(profile["behaviour"].get("login", {}).values()) == sent[user_id], user_id
        status, events = get(lambda_context, f"/v1/users/{user_id}/events", query="limit=100")
        assert status == 200 and events["next_cursor"] is None, events
        ids = [e["message_id"] for e in events["events"] if e["type"] == "track"]
        assert len(ids) == len(set(ids)) == sent[user_id], user_id
    assert storm_share > 0.2  # the faults were injected
    assert server_errors > 0 or not lost_responses  # lost answers reach the app as 5xx
    assert dynamodb_faults.slept > 0  # botocore backed off and retried
