"""Find personal data anywhere in DynamoDB items: every attribute, keys included, with compressed
Binary values (zlib JSON) inflated and opaque cursors (base64 JSON) decoded, so an erasure test
cannot pass just because the data sits in an encoded form."""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Iterable, Iterator
from typing import Any


def texts(value: Any) -> Iterator[str]:
    """Every readable string inside an attribute value (boto3 resource shape)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield str(key)
            yield from texts(inner)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for inner in value:
            yield from texts(inner)
    elif isinstance(value, (bytes, bytearray)) or hasattr(value, "value"):
        raw = bytes(value.value if hasattr(value, "value") else value)
        try:
            yield zlib.decompress(raw).decode("utf-8", "replace")
        except zlib.error:
            yield raw.decode("utf-8", "replace")
    elif isinstance(value, str):
        yield value
        decoded = _base64_text(value)
        if decoded is not None:
            yield decoded
    elif value is not None:
        yield str(value)


def _base64_text(value: str) -> str | None:
    if len(value) < 8:
        return None
    for decode in (base64.urlsafe_b64decode, base64.b64decode):
        try:
            return decode(value + "=" * (-len(value) % 4)).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            continue
    return None


def naming(items: Iterable[dict[str, Any]], *needles: str) -> list[dict[str, Any]]:
    """The items in which any needle (a user id, an address) appears, case-insensitively."""
    wanted = [n.lower() for n in needles]
    return [item for item in items if any(n in text.lower() for text in texts(item) for n in wanted)]


def scan_all(table: Any) -> list[dict[str, Any]]:
    """Every item of a boto3 Table resource."""
    items: list[dict[str, Any]] = []
    scan: dict[str, Any] = {"ConsistentRead": True}
    while True:
        response = table.scan(**scan)
        items.extend(response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return items
        scan["ExclusiveStartKey"] = response["LastEvaluatedKey"]
