"""What a message may hold: the accepted time range, nesting depth and numbers (pure, no AWS)."""

import json
from datetime import UTC, datetime

import pytest

from cohortcast.clock import isoformat, parse_timestamp
from cohortcast.errors import BadRequest
from cohortcast.ingest.messages import MAX_VALUE_DEPTH, Rejected, normalise
from cohortcast.ingest.payload import MAX_DOCUMENT_DEPTH, parse_json

RECEIVED = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def _track(**fields):
    return normalise(
        {"userId": "u1", "event": "x", **fields}, index=0, received_at=RECEIVED, implied_type="track"
    )


def _rejection(**fields) -> tuple[str, str | None]:
    with pytest.raises(Rejected) as rejected:
        _track(**fields)
    return rejected.value.code, rejected.value.field


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    "fields",
    [
        {"timestamp": "0999-01-01T00:00:00Z"},
        {"timestamp": "1969-12-31T23:59:59Z"},
        {"timestamp": "9999-12-31T23:59:59Z"},
        {"timestamp": "2026-11-24T12:00:01Z"},  # more than a day after receivedAt
        {"timestamp": "0001-01-01T00:00:00Z", "sentAt": "9999-12-31T23:59:59Z"},  # correction overflows
        {"timestamp": "9999-12-31T23:59:59Z", "sentAt": "0001-01-01T00:00:00Z"},
        {"timestamp": "1980-01-01T00:00:00Z", "sentAt": "2090-01-01T00:00:00Z"},  # corrected to 1916
        {"originalTimestamp": "0999-01-01T00:00:00Z"},
    ],
)
def test_event_time_outside_1970_to_a_day_ahead_is_rejected(fields):
    assert _rejection(**fields) == ("invalid_timestamp", "timestamp")


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-13-01T00:00:00Z"]
)
def test_timestamp_that_is_not_a_time_in_utc_is_rejected_naming_the_field(value):
    assert _rejection(sentAt=value, timestamp="2026-11-23T11:00:00Z") == ("invalid_timestamp", "sentAt")


def test_device_clock_reset_to_1970_is_corrected_by_sent_at():
    # Given a phone whose clock restarted at the epoch, queueing an event 60 s before sending
    message = _track(timestamp="1970-01-01T00:01:00Z", sentAt="1970-01-01T00:02:00Z")
    # Then the event lands a minute before it was received, and its stored times read back
    assert message.timestamp == datetime(2026, 11, 23, 11, 59, tzinfo=UTC)
    assert parse_timestamp(message.payload["originalTimestamp"]) == datetime(1970, 1, 1, 0, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "value", ["1970-01-01T00:00:00Z", "2026-11-24T12:00:00Z", "2000-02-29T23:59:59.999+14:00"]
)
def test_event_times_at_the_edges_of_the_range_are_accepted_and_read_back(value):
    message = _track(timestamp=value)
    assert message.timestamp == parse_timestamp(value)
    for stored in (message.payload["timestamp"], message.payload["originalTimestamp"], message.sort_time):
        assert parse_timestamp(stored) == message.timestamp


@pytest.mark.parametrize("year", [1, 9, 999, 1000, 9999])
def test_every_year_formats_with_four_digits_and_parses_back(year):
    moment = datetime(year, 6, 1, 8, 30, 15, 123000, tzinfo=UTC)
    assert isoformat(moment).startswith(f"{year:04d}-06-01T08:30:15.123")
    assert parse_timestamp(isoformat(moment)) == moment


@pytest.mark.parametrize("field", ["traits", "properties", "context", "integrations", "custom"])
def test_a_field_nested_deeper_than_the_limit_rejects_the_message_naming_it(field):
    assert _track(**{field: _nested(MAX_VALUE_DEPTH)}).payload[field]
    assert _rejection(**{field: _nested(MAX_VALUE_DEPTH + 1)}) == ("too_deep", field)


def test_deeply_nested_lists_are_counted_like_objects():
    value: list = []
    for _ in range(300):
        value = [value]
    assert _rejection(properties={"list": value}) == ("too_deep", "properties")


def test_batch_context_is_bounded_like_the_message_s_own():
    with pytest.raises(Rejected) as rejected:
        normalise(
            {"userId": "u1", "event": "x"},
            index=3,
            received_at=RECEIVED,
            implied_type="track",
            batch_context=_nested(MAX_VALUE_DEPTH + 1),
        )
    assert (rejected.value.code, rejected.value.field) == ("too_deep", "context")


@pytest.mark.parametrize(
    "body",
    [
        '{"properties": {"n": NaN}}',
        '{"properties": {"n": [Infinity]}}',
        '{"properties": {"n": -Infinity}}',
        '{"properties": {"n": 1e400}}',
        '{"properties": {"n": ' + "9" * 5000 + "}}",
        '{"properties": {"n": ' + "9" * 39 + "}}",
        '{"traits": {"n": -' + "9" * 39 + "}}",
    ],
)
def test_numbers_that_cannot_be_stored_reject_the_message(body):
    fields = parse_json(body.encode())
    code, field = _rejection(**fields)
    assert code == "invalid_number" and field in ("properties", "traits")


def test_largest_integers_and_floats_are_kept_exactly():
    message = _track(properties=parse_json(b'{"big": ' + b"9" * 38 + b', "small": -1.5e300, "ok": 12}'))
    assert message.payload["properties"] == {"big": 10**38 - 1, "small": -1.5e300, "ok": 12}


def test_the_rejection_points_at_the_offending_value():
    with pytest.raises(Rejected) as rejected:
        _track(properties={"a/b": [1, {"c": float("nan")}]})
    assert "/properties/a~1b/1/c" in rejected.value.message


def test_body_nested_past_the_document_limit_is_refused_before_parsing():
    with pytest.raises(BadRequest) as refused:
        parse_json(b"[" * 10_000 + b"]" * 10_000)
    assert refused.value.code == "invalid_json"
    assert refused.value.details == {"limit_depth": MAX_DOCUMENT_DEPTH}


def test_brackets_inside_strings_do_not_count_as_nesting():
    body = json.dumps({"a": "[" * 5000, "b": '\\"{' * 5000}).encode()
    assert parse_json(body) == {"a": "[" * 5000, "b": '\\"{' * 5000}


@pytest.mark.parametrize("body", [b'"' + b'\\"' * 100_000, b'{"a": "' + b"\\" * 100_001])
def test_broken_strings_are_refused_as_invalid_json(body):
    with pytest.raises(BadRequest) as refused:
        parse_json(body)
    assert refused.value.code == "invalid_json"
