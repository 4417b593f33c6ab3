"""Validate and normalise Segment messages (field names and rules from the Segment spec)."""

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cohortcast.clock import isoformat, parse_timestamp
from cohortcast.ingest.payload import MAX_MESSAGE_BYTES, UnreadableNumber

MESSAGE_TYPES = ("identify", "track", "page", "screen", "group", "alias")
# Event names under which page views and screens are counted in behavioural aggregates.
PAGE_EVENT, SCREEN_EVENT = "$page", "$screen"
_MAX_ID_LENGTH = 256
_MAX_EVENT_NAME = 256
_OBJECT_FIELDS = ("traits", "properties", "context", "integrations")
_TIME_FIELDS = ("timestamp", "sentAt", "originalTimestamp")
# The accepted event time (after skew correction). Before 1970 there are no epoch days or
# TTLs; a day ahead covers clients with a wrong time zone and no sentAt to correct it.
EARLIEST_TIMESTAMP = datetime(1970, 1, 1, tzinfo=UTC)
MAX_FUTURE = timedelta(days=1)
# How deep traits, properties, context (any field) may nest: far beyond real payloads, and
# well inside what the API's JSON serialiser renders (pydantic stops at 255).
MAX_VALUE_DEPTH = 32
MAX_INTEGER = 10**38 - 1  # DynamoDB's number precision


class Rejected(Exception):
    """A message that cannot be stored; `field` names the offending field."""

    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


@dataclass(slots=True)
class Message:
    index: int
    type: str
    message_id: str
    user_id: str | None
    anonymous_id: str | None
    timestamp: datetime  # skew-corrected event time
    sort_time: str  # stable across client retries: keys the raw event
    event: str | None  # name counted in aggregates (track event, $page, $screen)
    traits: dict[str, Any] | None
    previous_id: str | None
    group_id: str | None
    payload: dict[str, Any]  # what is stored as the raw event

    @property
    def is_activity(self) -> bool:
        """Track, page and screen are user activity; identify/group/alias are bookkeeping."""
        return self.event is not None


def normalise(
    raw: Any,
    *,
    index: int,
    received_at: datetime,
    implied_type: str | None = None,
    batch_sent_at: Any = None,
    batch_context: dict | None = None,
    batch_integrations: dict | None = None,
) -> Message:
    """Check one message against the Segment rules and compute its stored form."""
    if not isinstance(raw, dict):
        raise Rejected("invalid_message", "message must be a JSON object")
    msg_type = raw.get("type", implied_type) if implied_type is None else implied_type
    if msg_type not in MESSAGE_TYPES:
        raise Rejected("invalid_type", f"type must be one of {', '.join(MESSAGE_TYPES)}", "type")
    for name in _OBJECT_FIELDS:
        if raw.get(name) is not None and not isinstance(raw[name], dict):
            raise Rejected("invalid_field", f"{name} must be an object", name)
    _check_values(raw)
    _check_values({"context": batch_context, "integrations": batch_integrations})
    size = len(json.dumps(raw, separators=(",", ":"), default=str).encode())
    if size > MAX_MESSAGE_BYTES:
        raise Rejected("message_too_large", f"message is {size} bytes; the limit is {MAX_MESSAGE_BYTES}")

    user_id = _identifier(raw, "userId")
    anonymous_id = _identifier(raw, "anonymousId")
    previous_id = _identifier(raw, "previousId")
    group_id = _identifier(raw, "groupId")
    if msg_type == "alias":
        if user_id is None or previous_id is None:
            raise Rejected("missing_id", "alias needs both userId and previousId", "previousId")
    elif user_id is None and anonymous_id is None:
        raise Rejected("missing_id", "message needs a userId or an anonymousId", "userId")
    if msg_type == "group" and group_id is None:
        raise Rejected("missing_id", "group needs a groupId", "groupId")

    event = _event_name(raw, msg_type)
    times = {name: _time(raw, name) for name in _TIME_FIELDS}
    sent_at = times["sentAt"] or (_parse_batch_time(batch_sent_at))
    client_time = times["timestamp"] or times["originalTimestamp"]
    timestamp = _corrected(client_time, sent_at, received_at)
    _check_range(timestamp, received_at, corrected=sent_at is not None and client_time is not None)
    message_id = _message_id(raw)

    payload = dict(raw)
    payload["type"] = msg_type
    payload["messageId"] = message_id
    if batch_context and "context" not in raw:
        payload["context"] = batch_context
    elif batch_context:
        payload["context"] = {**batch_context, **raw["context"]}
    if batch_integrations:
        payload["integrations"] = {**batch_integrations, **(raw.get("integrations") or {})}
    payload.pop("writeKey", None)
    payload["receivedAt"] = isoformat(received_at)
    payload["timestamp"] = isoformat(timestamp)
    if client_time is not None:
        payload["originalTimestamp"] = isoformat(client_time)

    return Message(
        index=index,
        type=msg_type,
        message_id=message_id,
        user_id=user_id,
        anonymous_id=anonymous_id,
        timestamp=timestamp,
        sort_time=isoformat(client_time or received_at),
        event=event,
        traits=_traits(raw, msg_type),
        previous_id=previous_id,
        group_id=group_id,
        payload=payload,
    )


def _identifier(raw: dict, name: str) -> str | None:
    value = raw.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Rejected("invalid_field", f"{name} must be a string", name)
    text = str(value)
    if len(text) > _MAX_ID_LENGTH:
        raise Rejected("invalid_field", f"{name} is longer than {_MAX_ID_LENGTH} characters", name)
    _require_unicode(text, name)
    return text


def _require_unicode(text: str, name: str) -> None:
    """JSON can escape half a surrogate pair ("\\ud800"); no UTF-8 key or URL can hold one."""
    try:
        text.encode()
    except UnicodeEncodeError as err:
        raise Rejected(
            "invalid_field", f"{name} has an unpaired surrogate (\\u{ord(text[err.start]):04x})", name
        ) from err


def _event_name(raw: dict, msg_type: str) -> str | None:
    if msg_type == "page":
        return PAGE_EVENT
    if msg_type == "screen":
        return SCREEN_EVENT
    if msg_type != "track":
        return None
    name = raw.get("event")
    if not isinstance(name, str) or not name.strip():
        raise Rejected("missing_event", "track needs an event name", "event")
    if len(name) > _MAX_EVENT_NAME:
        raise Rejected("invalid_field", f"event is longer than {_MAX_EVENT_NAME} characters", "event")
    _require_unicode(name, "event")
    return name


def _traits(raw: dict, msg_type: str) -> dict[str, Any] | None:
    if msg_type == "identify":
        return raw.get("traits") or (raw.get("context") or {}).get("traits") or {}
    if msg_type == "group":
        return raw.get("traits") or {}
    return None


def _time(raw: dict, name: str) -> datetime | None:
    value = raw.get(name)
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except (ValueError, TypeError) as err:
        raise Rejected("invalid_timestamp", f"{name} must be an ISO-8601 timestamp", name) from err


def _parse_batch_time(value: Any) -> datetime | None:
    try:
        return parse_timestamp(value) if value is not None else None
    except (ValueError, TypeError):
        return None


def _corrected(client_time: datetime | None, sent_at: datetime | None, received_at: datetime) -> datetime:
    """Segment's skew correction: timestamp = receivedAt − (sentAt − originalTimestamp)."""
    if client_time is None:
        return received_at
    if sent_at is None:
        return client_time  # an explicit (possibly historical) timestamp is honoured as sent
    try:
        return received_at - (sent_at - client_time)
    except OverflowError as err:  # e.g. timestamp 0001-01-01 sent at 9999-12-31
        raise Rejected(
            "invalid_timestamp",
            "timestamp corrected for clock skew (receivedAt − (sentAt − timestamp)) is outside years 1-9999",
            "timestamp",
        ) from err


def _check_range(timestamp: datetime, received_at: datetime, *, corrected: bool) -> None:
    latest = received_at + MAX_FUTURE
    if EARLIEST_TIMESTAMP <= timestamp <= latest:
        return
    how = " corrected for clock skew (receivedAt − (sentAt − timestamp))" if corrected else ""
    raise Rejected(
        "invalid_timestamp",
        f"timestamp{how} is {isoformat(timestamp)}; it must be between {isoformat(EARLIEST_TIMESTAMP)}"
        f" and a day after receivedAt ({isoformat(latest)})",
        "timestamp",
    )


def _check_values(raw: dict[str, Any]) -> None:
    """Every field nests at most MAX_VALUE_DEPTH levels and holds only numbers we can store.

    Iterative, so a deep value costs a loop, not a RecursionError; runs before anything
    serialises the message."""
    for name, value in raw.items():
        pending: list[tuple[Any, tuple[Any, ...]]] = [(value, (name,))]
        while pending:
            value, path = pending.pop()
            if isinstance(value, dict | list):
                if len(path) > MAX_VALUE_DEPTH:
                    raise Rejected(
                        "too_deep",
                        f"{name} nests deeper than {MAX_VALUE_DEPTH} levels (at {_pointer(path)})",
                        name,
                    )
                children = value.items() if isinstance(value, dict) else enumerate(value)
                pending.extend((child, (*path, key)) for key, child in children)
            elif (
                isinstance(value, UnreadableNumber)
                or (type(value) is int and abs(value) > MAX_INTEGER)
                or (type(value) is float and not math.isfinite(value))
            ):
                shown = "an integer over 38 digits" if type(value) is int else repr(str(value)[:40])
                raise Rejected(
                    "invalid_number",
                    f"{_pointer(path)} is {shown}: numbers must be finite, integers at most 38 digits",
                    name,
                )


def _pointer(path: tuple[Any, ...]) -> str:
    """RFC 6901 JSON pointer of a value inside the message."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _message_id(raw: dict) -> str:
    value = raw.get("messageId")
    if isinstance(value, str) and 0 < len(value) <= _MAX_ID_LENGTH:
        return value
    if value is not None and not isinstance(value, str):
        raise Rejected("invalid_field", "messageId must be a string", "messageId")
    if isinstance(value, str) and len(value) > _MAX_ID_LENGTH:
        raise Rejected("invalid_field", f"messageId is longer than {_MAX_ID_LENGTH} characters", "messageId")
    # No id given: derive one from the content so an identical retry is still stored once.
    content = {k: v for k, v in raw.items() if k not in ("sentAt", "writeKey")}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()
    return f"cc-{digest[:32]}"


def retention_expiry(timestamp: datetime, retention_days: int) -> int:
    return int((timestamp + timedelta(days=retention_days)).timestamp())
