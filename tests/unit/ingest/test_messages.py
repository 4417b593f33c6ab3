"""Segment message rules: validation, skew correction, stable keys (pure, no AWS)."""

from datetime import UTC, datetime, timedelta

import pytest

from cohortcast.ingest.messages import PAGE_EVENT, Rejected, normalise

RECEIVED = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def _normalise(raw, **kwargs):
    return normalise(raw, index=0, received_at=RECEIVED, **kwargs)


def test_clock_skew_is_corrected_from_sent_at():
    # Given a client whose clock runs 1 hour fast, sending an event 10 s before sentAt
    message = _normalise(
        {
            "userId": "u1",
            "event": "login",
            "timestamp": "2026-11-23T12:59:50Z",
            "sentAt": "2026-11-23T13:00:00Z",
        },
        implied_type="track",
    )
    # Then the event is placed 10 s before the server received it
    assert message.timestamp == RECEIVED - timedelta(seconds=10)
    assert message.payload["originalTimestamp"] == "2026-11-23T12:59:50.000Z"


def test_historical_timestamp_without_sent_at_is_honoured():
    message = _normalise(
        {"userId": "u1", "event": "login", "timestamp": "2025-01-02T03:04:05Z"}, implied_type="track"
    )
    assert message.timestamp == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_batch_sent_at_applies_to_items_without_their_own():
    message = _normalise(
        {"type": "track", "userId": "u1", "event": "x", "timestamp": "2026-11-23T11:00:00Z"},
        batch_sent_at="2026-11-23T11:00:30Z",
    )
    assert message.timestamp == RECEIVED - timedelta(seconds=30)


def test_missing_timestamp_uses_received_at():
    assert _normalise({"userId": "u1", "event": "x"}, implied_type="track").timestamp == RECEIVED


def test_retry_without_message_id_gets_the_same_derived_id():
    raw = {"userId": "u1", "event": "x", "timestamp": "2026-11-23T11:00:00Z"}
    first = _normalise({**raw, "sentAt": "2026-11-23T11:00:01Z"}, implied_type="track")
    retry = _normalise({**raw, "sentAt": "2026-11-23T11:05:01Z"}, implied_type="track")
    assert first.message_id == retry.message_id
    assert first.sort_time == retry.sort_time


def test_batch_context_merges_into_items_with_item_values_winning():
    message = _normalise(
        {"type": "identify", "userId": "u1", "context": {"ip": "1.1.1.1"}},
        batch_context={"ip": "0.0.0.0", "library": {"name": "sdk"}},
    )
    assert message.payload["context"] == {"ip": "1.1.1.1", "library": {"name": "sdk"}}


def test_page_counts_as_page_event():
    assert _normalise({"anonymousId": "a1", "name": "Home"}, implied_type="page").event == PAGE_EVENT


@pytest.mark.parametrize(
    ("raw", "implied", "code", "field"),
    [
        ({"event": "x"}, "track", "missing_id", "userId"),
        ({"userId": "u1"}, "track", "missing_event", "event"),
        ({"userId": "u1", "event": "   "}, "track", "missing_event", "event"),
        ({"userId": "u1", "traits": ["a"]}, "identify", "invalid_field", "traits"),
        ({"userId": "u1", "event": "x", "properties": "p"}, "track", "invalid_field", "properties"),
        ({"userId": "u1", "event": "x", "timestamp": "yesterday"}, "track", "invalid_timestamp", "timestamp"),
        ({"userId": "u1", "event": "x", "timestamp": 12}, "track", "invalid_timestamp", "timestamp"),
        ({"userId": {"id": 1}}, "identify", "invalid_field", "userId"),
        ({"userId": "x\ud800"}, "identify", "invalid_field", "userId"),
        ({"anonymousId": "\udc00a"}, "identify", "invalid_field", "anonymousId"),
        ({"userId": "u1", "event": "e\ud800"}, "track", "invalid_field", "event"),
        ({"userId": "u1"}, "alias", "missing_id", "previousId"),
        ({"userId": "u1"}, "group", "missing_id", "groupId"),
        ({"type": "purchase", "userId": "u1"}, None, "invalid_type", "type"),
        ("not an object", None, "invalid_message", None),
    ],
)
def test_invalid_messages_are_rejected_naming_the_field(raw, implied, code, field):
    with pytest.raises(Rejected) as rejected:
        _normalise(raw, implied_type=implied)
    assert (rejected.value.code, rejected.value.field) == (code, field)


def test_message_over_32_kb_is_rejected():
    with pytest.raises(Rejected) as rejected:
        _normalise({"userId": "u1", "event": "x", "properties": {"blob": "x" * 33_000}}, implied_type="track")
    assert rejected.value.code == "message_too_large"


def test_numeric_user_id_is_accepted_as_text():
    assert _normalise({"userId": 42, "event": "x"}, implied_type="track").user_id == "42"
