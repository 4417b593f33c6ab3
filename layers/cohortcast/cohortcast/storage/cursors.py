"""Opaque page cursors (URL-safe base64 of compact JSON) and DynamoDB number clean-up."""

import base64
import binascii
import json
from decimal import Decimal
from typing import Any

from cohortcast.errors import BadRequest


def encode(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()


def decode(cursor: str) -> Any:
    """The value behind a cursor; a cursor we did not make is a 400 naming the query parameter."""
    try:
        return json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as err:
        raise BadRequest(
            "invalid cursor", {"in": "query", "pointer": "/cursor"}, code="invalid_cursor"
        ) from err


def decode_object(cursor: str) -> dict[str, Any]:
    value = decode(cursor)
    if not isinstance(value, dict):
        raise BadRequest("invalid cursor", {"in": "query", "pointer": "/cursor"}, code="invalid_cursor")
    return value


def plain(value: Any) -> Any:
    """boto3's Decimals back to ints (or floats when fractional), through dicts and lists."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
