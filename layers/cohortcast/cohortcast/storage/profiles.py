"""Profiles table: profiles and identity aliases (see docs/data-model.md).

The stored profile is plain data here (`ProfileRecord`, `Behaviour`); what ingestion and the
segment engine do with it lives in `cohortcast.profiles`.
"""

import base64
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import Attr
from boto3.dynamodb.types import TypeDeserializer

from cohortcast.clock import isoformat, parse_timestamp
from cohortcast.config import get_settings
from cohortcast.storage import aws, dynamo, keys

HourlyCounts = dict[str, dict[int, int]]

# Profiles written before hour buckets hold day buckets ("d", "c"): each is read as the last
# hour of its day, so it counts in a window as long as it did before (never dropped early).
_LAST_HOUR_OF_DAY = 23


@dataclass(slots=True)
class Behaviour:
    """Hourly counts per event name (and per filtered counter) over the retention window.

    Stored as zlib-compressed JSON in one Binary attribute: a busy profile stays a few hundred
    bytes, which keeps every profile write at one or two write units. Hour buckets (not day
    buckets) let windows be exact to the hour.
    """

    hourly: HourlyCounts = field(default_factory=dict)
    counters: HourlyCounts = field(default_factory=dict)


@dataclass(slots=True)
class ProfileRecord:
    """The stored profile: what ingestion updates and the segment engine reads."""

    pk: str
    user_id: str | None
    anonymous_id: str | None
    traits: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    behaviour: Behaviour = field(default_factory=Behaviour)
    recent_ids: bytes = b""  # fingerprints of the messages counted, newest last
    merged_keys: list[str] = field(default_factory=list)
    created_at: str = ""
    updated_at: str = ""
    version: int = 0  # 0 = not stored yet; optimistic locking on every write
    extra: dict[str, Any] = field(default_factory=dict)  # attributes owned by other domains


_OWN_ATTRIBUTES = {
    "pk",
    "sk",
    "kind",
    "user_id",
    "anonymous_id",
    "traits",
    "groups",
    "first_seen",
    "last_seen",
    "behaviour",
    "recent_ids",
    "merged_keys",
    "created_at",
    "updated_at",
    "version",
}


class StaleProfile(Exception):
    """Someone else wrote the profile since it was read: read again and re-apply."""


def version_check(profile_pk: str, version: int) -> dict[str, Any]:
    """A transaction action that holds only while the profile is still at `version`."""
    return {
        "ConditionCheck": {
            "TableName": get_settings().profiles_table,
            "Key": {"pk": {"S": profile_pk}, "sk": {"S": keys.PROFILE_SK}},
            "ConditionExpression": "#version = :version",
            "ExpressionAttributeNames": {"#version": "version"},
            "ExpressionAttributeValues": {":version": {"N": str(version)}},
        }
    }


def _table() -> Any:
    return aws.table(get_settings().profiles_table)


def new_record(pk: str) -> ProfileRecord:
    user_id, anonymous_id = keys.profile_ids(pk)
    return ProfileRecord(pk=pk, user_id=user_id, anonymous_id=anonymous_id)


def from_item(item: dict[str, Any]) -> ProfileRecord:
    return ProfileRecord(
        pk=item["pk"],
        user_id=item.get("user_id"),
        anonymous_id=item.get("anonymous_id"),
        traits=json.loads(item.get("traits") or "{}"),
        groups=json.loads(item.get("groups") or "{}"),
        first_seen=load_time(item.get("first_seen")),
        last_seen=load_time(item.get("last_seen")),
        behaviour=decode_behaviour(_binary(item.get("behaviour"))),
        recent_ids=_binary(item.get("recent_ids")) or b"",
        merged_keys=list(item.get("merged_keys") or []),
        created_at=item.get("created_at", ""),
        updated_at=item.get("updated_at", ""),
        version=int(item.get("version", 0)),
        extra={k: v for k, v in item.items() if k not in _OWN_ATTRIBUTES},
    )


def _binary(value: Any) -> bytes | None:
    return bytes(value.value if hasattr(value, "value") else value) if value is not None else None


def to_item(record: ProfileRecord) -> dict[str, Any]:
    item: dict[str, Any] = {
        **record.extra,
        "pk": record.pk,
        "sk": keys.PROFILE_SK,
        "kind": "profile",
        "traits": dump_json(record.traits),
        "behaviour": encode_behaviour(record.behaviour),
        "recent_ids": record.recent_ids,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "version": record.version,
    }
    optional = {
        "user_id": record.user_id,
        "anonymous_id": record.anonymous_id,
        "groups": dump_json(record.groups) if record.groups else None,
        "first_seen": dump_time(record.first_seen),
        "last_seen": dump_time(record.last_seen),
        "merged_keys": record.merged_keys or None,
    }
    item.update({k: v for k, v in optional.items() if v is not None})
    return item


def _dump_counts(counts: HourlyCounts) -> dict[str, dict[str, int]]:
    return {name: {str(hour): n for hour, n in hours.items()} for name, hours in counts.items()}


def _load_counts(doc: dict, hourly: str, daily: str) -> HourlyCounts:
    counts = {
        name: {int(hour): n for hour, n in hours.items()} for name, hours in doc.get(hourly, {}).items()
    }
    for name, days in doc.get(daily, {}).items():
        hours = counts.setdefault(name, {})
        for day, n in days.items():
            hour = int(day) * 24 + _LAST_HOUR_OF_DAY
            hours[hour] = hours.get(hour, 0) + n
    return counts


def encode_behaviour(behaviour: Behaviour) -> bytes:
    doc = {"h": _dump_counts(behaviour.hourly), "hc": _dump_counts(behaviour.counters)}
    return zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 6)


def decode_behaviour(blob: bytes | None) -> Behaviour:
    if not blob:
        return Behaviour()
    doc = json.loads(zlib.decompress(bytes(blob)))
    return Behaviour(hourly=_load_counts(doc, "h", "d"), counters=_load_counts(doc, "hc", "c"))


def dump_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def load_time(value: str | None) -> datetime | None:
    """A stored time, or None for one we cannot read (such as "999-01-01T00:00:00.000Z",
    written before ingest bounded timestamps): one bad value must not make a profile
    unreadable, and the next event rewrites it."""
    if not value:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def dump_time(value: datetime | None) -> str | None:
    return isoformat(value) if value else None


def get_many(pks: Iterable[str]) -> dict[str, ProfileRecord]:
    items = dynamo.batch_get(get_settings().profiles_table, ({"pk": pk, "sk": keys.PROFILE_SK} for pk in pks))
    return {item["pk"]: from_item(item) for item in items}


def get(pk: str) -> ProfileRecord | None:
    item = _table().get_item(Key={"pk": pk, "sk": keys.PROFILE_SK}).get("Item")
    return from_item(item) if item else None


def save(record: ProfileRecord) -> None:
    """Write with optimistic locking on `version` (bumped here)."""
    expected = record.version
    record.version = expected + 1
    condition = Attr("pk").not_exists() if expected == 0 else Attr("version").eq(expected)
    written = None
    try:
        written = dynamo.conditional_write(
            _table().put_item, Item=to_item(record), ConditionExpression=condition
        )
    finally:
        if written is None:  # refused or failed: the record is still at the version read
            record.version = expected
    if written is None:
        raise StaleProfile(record.pk)


def delete(pk: str) -> None:
    _table().delete_item(Key={"pk": pk, "sk": keys.PROFILE_SK})


def scan_page(
    limit: int,
    start_key: dict[str, Any] | None,
    *,
    part: int = 0,
    parts: int = 1,
    identified_only: bool = False,
) -> tuple[list[ProfileRecord], dict[str, Any] | None]:
    """One page of a Scan over the profiles (aliases skipped; anonymous ones too if
    `identified_only`), in `part` of `parts` parallel scan segments; the key to resume from,
    None when the scan (or the part) is through."""
    condition = Attr("sk").eq(keys.PROFILE_SK)
    if identified_only:
        condition &= Attr("user_id").exists()
    scan: dict[str, Any] = {"Limit": limit, "FilterExpression": condition}
    if parts > 1:
        scan |= {"Segment": part, "TotalSegments": parts}
    if start_key:
        scan["ExclusiveStartKey"] = start_key
    response = _table().scan(**scan)
    return [from_item(item) for item in response.get("Items", [])], response.get("LastEvaluatedKey")


def approximate_count() -> int:
    """The table's item count as DescribeTable gives it: refreshed about every six hours, and
    aliases included."""
    table = aws.client("dynamodb").describe_table(TableName=get_settings().profiles_table)["Table"]
    return int(table["ItemCount"])


# -- the table's stream ---------------------------------------------------------------------------

_deserializer = TypeDeserializer()


@dataclass(slots=True)
class StreamChange:
    """One ProfilesTable stream record: a profile written, or an item (profile or alias)
    removed; neither for an alias written."""

    profile: ProfileRecord | None = None
    removed_pk: str | None = None


def from_stream_record(record: dict[str, Any]) -> StreamChange:
    dynamodb = record.get("dynamodb") or {}
    if record.get("eventName") == "REMOVE":
        return StreamChange(removed_pk=_image_to_item(dynamodb.get("Keys") or {})["pk"])
    item = _image_to_item(dynamodb.get("NewImage") or {})
    return StreamChange(profile=from_item(item) if item.get("kind") == "profile" else None)


def _image_to_item(image: dict[str, Any]) -> dict[str, Any]:
    """A stream record's NewImage/OldImage as boto3 would return the item (Binary → bytes)."""
    return {name: _deserializer.deserialize(_binary_decoded(value)) for name, value in image.items()}


def _binary_decoded(value: dict[str, Any]) -> dict[str, Any]:
    # Lambda delivers Binary attributes base64-encoded inside the JSON event.
    if "B" in value and isinstance(value["B"], str):
        return {"B": base64.b64decode(value["B"])}
    if "BS" in value:
        return {"BS": [base64.b64decode(v) if isinstance(v, str) else v for v in value["BS"]]}
    if "M" in value:
        return {"M": {k: _binary_decoded(v) for k, v in value["M"].items()}}
    if "L" in value:
        return {"L": [_binary_decoded(v) for v in value["L"]]}
    return value


# -- aliases: an anonymous id or a previous user id → the profile it was merged into --
def resolve_aliases(pks: Iterable[str]) -> dict[str, str]:
    """{profile pk: canonical profile pk} for those pks that were merged away."""
    items = dynamo.batch_get(
        get_settings().profiles_table, ({"pk": keys.alias_pk(pk), "sk": keys.ALIAS_SK} for pk in pks)
    )
    return {item["source"]: item["target"] for item in items}


def put_alias(source_pk: str, target_pk: str, created_at: str) -> None:
    _table().put_item(
        Item={
            "pk": keys.alias_pk(source_pk),
            "sk": keys.ALIAS_SK,
            "kind": "alias",
            "source": source_pk,
            "target": target_pk,
            "created_at": created_at,
        }
    )


def delete_alias(source_pk: str) -> None:
    _table().delete_item(Key={"pk": keys.alias_pk(source_pk), "sk": keys.ALIAS_SK})
