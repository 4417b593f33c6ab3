"""API key records (DataTable, `APIKEY#<sha-256 of the key>` / `KEY`): only the digest is a key."""

from dataclasses import dataclass
from typing import Any, Literal

from cohortcast.config import get_settings
from cohortcast.storage import aws, keys

Scope = Literal["write", "admin"]


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    scope: Scope
    name: str


def _table() -> Any:
    return aws.table(get_settings().data_table)


def _key(digest: str) -> dict[str, str]:
    return {"pk": keys.api_key_pk(digest), "sk": keys.API_KEY_SK}


def put_api_key(digest: str, record: ApiKey, *, hint: str, created_at: str) -> None:
    _table().put_item(
        Item={
            **_key(digest),
            "kind": "api_key",
            "key_id": record.key_id,
            "scope": record.scope,
            "name": record.name,
            "hint": hint,
            "created_at": created_at,
        }
    )


def get_api_key(digest: str) -> ApiKey | None:
    item = _table().get_item(Key=_key(digest)).get("Item")
    return ApiKey(key_id=item["key_id"], scope=item["scope"], name=item.get("name", "")) if item else None
