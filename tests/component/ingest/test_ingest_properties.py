"""Property: whatever a write key sends, an accepted message can be read back, listed, merged
by alias and erased, and the rest of its batch is kept (real handlers, moto).

Generated Segment messages mix ordinary values with the poison kinds the ingest must turn into
per-item answers: timestamps of any year and offset (with or without sentAt), deep nesting,
NaN/Infinity, integers beyond 38 digits and beyond Python's 4,300-digit limit.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.component.announcements.conftest import api_event

# Placeholder replaced in the JSON text by a 5,000-digit integer (json.dumps cannot write one).
_HUGE_INTEGER = "__huge_integer__"
_REJECTION_CODES = {"invalid_timestamp", "invalid_number", "too_deep", "message_too_large"}
_runs = itertools.count()

# Ids from URL-unreserved characters (the admin routes take them as path segments).
_ids = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~", min_size=1, max_size=12)
_clean_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**38) + 1, 10**38 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
_poison_scalars = (
    st.just(float("nan"))
    | st.sampled_from([float("inf"), float("-inf")])
    | st.integers(10**38, 10**60)
    | st.integers(-(10**60), -(10**38))
    | st.just(_HUGE_INTEGER)
)


def _json(scalars: st.SearchStrategy) -> st.SearchStrategy:
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
        ),
        max_leaves=8,
    )


@st.composite
def _nested(draw: st.DrawFn, depth: st.SearchStrategy) -> Any:
    value = draw(_json(_clean_scalars))
    for _ in range(draw(depth)):
        value = {"n": value}
    return value


_offsets = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12, minutes=-30))])
# The edges of every limit (years 1 and 9999, before 1970, a day after TEST_NOW), times near
# the accepted range, and any year at all.
_edge_times = st.sampled_from(
    [
        "9999-12-31T23:59:59.999Z",
        "0001-01-01T00:00:00Z",
        "0999-01-01T00:00:00Z",
        "1969-12-31T23:59:59.999Z",
        "1970-01-01T00:00:00Z",
        "2026-11-25T09:00:00Z",
        "2026-11-25T09:00:00.001Z",
        "0001-01-01T00:30:00+01:00",
        "9999-12-31T23:30:00-01:00",
    ]
)
_any_time = _edge_times | (
    st.datetimes(datetime(1969, 12, 1), datetime(2027, 1, 1), timezones=_offsets)
    | st.datetimes(timezones=_offsets)
).map(lambda moment: moment.isoformat())


@st.composite
def messages(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    """(message, clean): a clean message must be accepted; any other may be rejected per item."""
    kind = draw(st.sampled_from(["identify", "track", "page", "screen", "group"]))
    odd_values, timed = draw(st.booleans()), draw(st.booleans())
    message: dict[str, Any] = {"type": kind, "messageId": f"m-{draw(_ids)}-{draw(st.uuids())}"}
    if draw(st.booleans()):
        message["userId"] = draw(_ids)
    else:
        message["anonymousId"] = draw(_ids)
    if kind == "track":
        message["event"] = draw(st.text(min_size=1, max_size=12).filter(str.strip))
    if kind == "group":
        message["groupId"] = draw(_ids)
    values = (
        _json(_clean_scalars | _poison_scalars) | _nested(st.integers(28, 40))
        if odd_values
        else _nested(st.integers(0, 4))
    )
    field = "traits" if kind in ("identify", "group") else "properties"
    message[field] = {"v": draw(values)}
    if timed:
        message["timestamp"] = draw(_any_time)
        if draw(st.booleans()):
            message["sentAt"] = draw(_any_time)
    return message, not (odd_values or timed)


def _encode(body: dict[str, Any]) -> str:
    return json.dumps(body).replace(f'"{_HUGE_INTEGER}"', "7" * 5000)


@pytest.fixture
def http(aws, lambda_context):
    """call(method, path, body=None, scope=...) → (status, json) through the functions' handlers."""
    from functions.api import app as api_app
    from functions.ingest import app as ingest_app

    def call(method: str, path: str, body: Any = None, *, scope: str = "admin") -> tuple[int, Any]:
        event = api_event(method, path, body)
        event["requestContext"]["authorizer"]["lambda"]["scope"] = scope
        handler = ingest_app if scope == "write" else api_app
        response = handler.lambda_handler(event, lambda_context)
        return response["statusCode"], json.loads(response["body"]) if response.get("body") else None

    return call


@settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(messages(), min_size=1, max_size=4))
def test_accepted_messages_are_readable_listable_mergeable_and_erasable(http, batch):
    # Each example writes its own users: prefix every id with this run's number
    run = f"r{next(_runs)}"
    items = []
    for message, _clean in batch:
        message = dict(message)
        for name in ("userId", "anonymousId"):
            if name in message:
                message[name] = f"{run}-{name[0]}-{message[name]}"
        items.append(message)

    status, answer = http("POST", "/v1/batch", _encode({"batch": items}), scope="write")

    assert status in (200, 400), answer
    rejected = answer["rejected"] if status == 200 else answer["error"]["details"]
    rejected_at = {r["index"]: r["code"] for r in rejected}
    assert set(rejected_at.values()) <= _REJECTION_CODES
    assert not [i for i, (_, clean) in enumerate(batch) if clean and i in rejected_at]
    accepted = [m for i, m in enumerate(items) if i not in rejected_at]
    for code in rejected_at.values():
        event(f"rejected {code}")
    event(f"accepted {len(accepted)} of {len(items)}")
    event(f"accepted with a timestamp: {any('timestamp' in m for m in accepted)}")
    if status == 200:
        assert answer["accepted"] == len(accepted)

    for owner in {m.get("userId") or m["anonymousId"] for m in accepted}:
        own = [m for m in accepted if (m.get("userId") or m["anonymousId"]) == owner]
        # Merge the owner into a new user: alias for a userId, identify for an anonymousId
        target = f"{run}-target-{owner}"
        if own[0].get("userId"):
            merge = {"type": "alias", "previousId": owner, "userId": target}
        else:
            merge = {"type": "identify", "anonymousId": owner, "userId": target}
        assert http("POST", f"/v1/{merge['type']}", merge, scope="write")[0] == 200

        status, profile = http("GET", f"/v1/users/{target}")
        assert status == 200, profile
        identifies = [m for m in own if m["type"] == "identify"]
        if len(identifies) == 1:
            assert profile["traits"]["v"] == identifies[0]["traits"]["v"]
        status, page = http("GET", f"/v1/users/{target}/events")
        assert status == 200, page
        assert {m["messageId"] for m in own} <= {e["message_id"] for e in page["events"]}

        assert http("DELETE", f"/v1/users/{target}")[0] == 200
        assert http("GET", f"/v1/users/{target}")[0] == 404
