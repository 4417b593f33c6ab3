"""Events table: raw events per profile, newest queried first, expired by TTL."""

import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Key

from cohortcast.config import get_settings
from cohortcast.storage import aws, cursors, keys


@dataclass(slots=True)
class StoredEvent:
    profile_pk: str
    sort_time: str
    message_id: str
    type: str
    event: str | None
    timestamp: str
    received_at: str
    expires_at: int
    payload: dict[str, Any]


def _table() -> Any:
    return aws.table(get_settings().events_table)


def to_item(stored: StoredEvent) -> dict[str, Any]:
    item = {
        "pk": stored.profile_pk,
        "sk": keys.event_sk(stored.sort_time, stored.message_id),
        "message_id": stored.message_id,
        "type": stored.type,
        "timestamp": stored.timestamp,
        "received_at": stored.received_at,
        "expires_at": stored.expires_at,
        # Compressed: a 1 KB message usually stores in under 1 KB, i.e. one write unit.
        "payload": zlib.compress(json.dumps(stored.payload, separators=(",", ":")).encode(), 6),
    }
    if stored.event:
        item["event"] = stored.event
    return item


def from_item(item: dict[str, Any]) -> StoredEvent:
    sort_time, _, message_id = item["sk"].rpartition("#")
    payload = item.get("payload")
    return StoredEvent(
        profile_pk=item["pk"],
        sort_time=sort_time,
        message_id=item.get("message_id", message_id),
        type=item.get("type", ""),
        event=item.get("event"),
        timestamp=item.get("timestamp", ""),
        received_at=item.get("received_at", ""),
        expires_at=int(item.get("expires_at", 0)),
        payload=json.loads(zlib.decompress(bytes(payload.value if hasattr(payload, "value") else payload)))
        if payload is not None
        else {},
    )


def put_many(events: Iterable[StoredEvent]) -> None:
    """Idempotent: a re-sent event has the same key and overwrites itself."""
    with _table().batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
        for stored in events:
            batch.put_item(Item=to_item(stored))


def page(profile_pk: str, limit: int, cursor: str | None) -> tuple[list[StoredEvent], str | None]:
    """Newest first. The cursor is opaque to callers."""
    query: dict[str, Any] = {
        "KeyConditionExpression": Key("pk").eq(profile_pk),
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if cursor:
        query["ExclusiveStartKey"] = {"pk": profile_pk, "sk": str(cursors.decode(cursor))}
    response = _table().query(**query)
    last = response.get("LastEvaluatedKey")
    next_cursor = cursors.encode(last["sk"]) if last else None
    return [from_item(item) for item in response.get("Items", [])], next_cursor


def all_for(profile_pk: str) -> Iterator[StoredEvent]:
    query: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq(profile_pk)}
    while True:
        response = _table().query(**query)
        yield from (from_item(item) for item in response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def move_all(source_pk: str, target_pk: str) -> int:
    """Re-key a merged profile's events under the profile they were merged into."""
    moved = list(all_for(source_pk))
    put_many(_rekeyed(stored, target_pk) for stored in moved)
    _delete(source_pk, moved)
    return len(moved)


def _rekeyed(stored: StoredEvent, target_pk: str) -> StoredEvent:
    stored.profile_pk = target_pk
    return stored


def delete_all(profile_pk: str) -> int:
    return _delete(profile_pk, list(all_for(profile_pk)))


def _delete(profile_pk: str, stored_events: list[StoredEvent]) -> int:
    with _table().batch_writer() as batch:
        for stored in stored_events:
            batch.delete_item(
                Key={"pk": profile_pk, "sk": keys.event_sk(stored.sort_time, stored.message_id)}
            )
    return len(stored_events)
