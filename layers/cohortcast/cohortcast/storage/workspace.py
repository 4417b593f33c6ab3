"""Workspace settings overrides: one DataTable item (`SETTINGS` / `WORKSPACE`)."""

import json
from typing import Any

from cohortcast.config import get_settings
from cohortcast.storage import aws, keys


def _table() -> Any:
    return aws.table(get_settings().data_table)


def get_overrides() -> dict[str, Any]:
    item = _table().get_item(Key={"pk": keys.SETTINGS_PK, "sk": keys.WORKSPACE_SK}).get("Item")
    return json.loads(item["settings"]) if item and item.get("settings") else {}


def put_overrides(overrides: dict[str, Any], *, updated_at: str) -> None:
    _table().put_item(
        Item={
            "pk": keys.SETTINGS_PK,
            "sk": keys.WORKSPACE_SK,
            "kind": "settings",
            # JSON string: nulls and tuples round-trip as they were validated.
            "settings": json.dumps(overrides, separators=(",", ":")),
            "updated_at": updated_at,
        }
    )
