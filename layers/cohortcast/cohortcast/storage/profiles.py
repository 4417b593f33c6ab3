"""Profiles table: profiles and identity aliases (see docs/data-model.md)."""

import json
from collections.abc import Iterable
from typing import Any

from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError

from cohortcast.config import get_settings
from cohortcast.profiles import behaviour as behaviour_codec
from cohortcast.profiles.record import ProfileRecord, dump_json, dump_time, load_time
from cohortcast.storage import aws, keys

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
        behaviour=behaviour_codec.decode(_binary(item.get("behaviour"))),
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
        "behaviour": behaviour_codec.encode(record.behaviour),
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


def get_many(pks: Iterable[str]) -> dict[str, ProfileRecord]:
    items = _batch_get([{"pk": pk, "sk": keys.PROFILE_SK} for pk in dict.fromkeys(pks)])
    return {item["pk"]: from_item(item) for item in items}


def get(pk: str) -> ProfileRecord | None:
    item = _table().get_item(Key={"pk": pk, "sk": keys.PROFILE_SK}).get("Item")
    return from_item(item) if item else None


def save(record: ProfileRecord) -> None:
    """Write with optimistic locking on `version` (bumped here)."""
    expected = record.version
    record.version = expected + 1
    condition = Attr("pk").not_exists() if expected == 0 else Attr("version").eq(expected)
    try:
        _table().put_item(Item=to_item(record), ConditionExpression=condition)
    except ClientError as err:
        record.version = expected
        if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise StaleProfile(record.pk) from err
        raise


def delete(pk: str) -> None:
    _table().delete_item(Key={"pk": pk, "sk": keys.PROFILE_SK})


# -- aliases: an anonymous id or a previous user id → the profile it was merged into --
def resolve_aliases(pks: Iterable[str]) -> dict[str, str]:
    """{profile pk: canonical profile pk} for those pks that were merged away."""
    items = _batch_get([{"pk": keys.alias_pk(pk), "sk": keys.ALIAS_SK} for pk in dict.fromkeys(pks)])
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


def _batch_get(key_list: list[dict[str, str]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    name = get_settings().profiles_table
    for start in range(0, len(key_list), 100):
        request: dict[str, Any] = {name: {"Keys": key_list[start : start + 100]}}
        while request:
            response = aws.dynamodb().batch_get_item(RequestItems=request)
            found.extend(response["Responses"].get(name, []))
            request = response.get("UnprocessedKeys") or {}
    return found
