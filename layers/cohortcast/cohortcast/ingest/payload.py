"""Request bodies: size limits before any parsing work, gzip, JSON (Segment's limits)."""

import base64
import binascii
import json
import zlib
from typing import Any

from cohortcast.errors import BadRequest

MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_MESSAGES = 2500
GZIP_MAGIC = b"\x1f\x8b"  # no JSON text can start with it (0x1f is not JSON whitespace)


def decode_body(body: str | None, *, is_base64: bool, content_encoding: str | None, limit: int) -> Any:
    """The JSON document in a request body, or BadRequest naming what is wrong.

    The bytes decide, not the headers: SDKs mislabel bodies (RudderStack's Node SDK sends gzip
    as application/x-www-form-urlencoded), and Segment's and RudderStack's servers read them."""
    raw = _raw_bytes(body, is_base64)
    encoding = (content_encoding or "").strip().lower()
    if raw.startswith(GZIP_MAGIC):
        raw = _gunzip(raw, limit)
    elif encoding == "gzip":
        raise BadRequest("Content-Encoding is gzip but the body is not gzip", code="invalid_gzip")
    elif encoding not in ("", "identity"):
        raise BadRequest(f"unsupported Content-Encoding {encoding!r}; use gzip or none", code="bad_encoding")
    if len(raw) > limit:
        raise BadRequest(
            f"payload is {len(raw)} bytes; the limit is {limit} bytes",
            {"limit_bytes": limit, "size_bytes": len(raw)},
            code="payload_too_large",
        )
    if not raw.strip():
        raise BadRequest("request body is empty; send a JSON object", code="invalid_json")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        where = f" at line {err.lineno} column {err.colno}" if isinstance(err, json.JSONDecodeError) else ""
        raise BadRequest(f"request body is not valid JSON{where}", code="invalid_json") from err


def _raw_bytes(body: str | None, is_base64: bool) -> bytes:
    if body is None:
        return b""
    if not is_base64:
        return body.encode()
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error as err:
        raise BadRequest("request body could not be decoded", code="invalid_body") from err


def _gunzip(raw: bytes, limit: int) -> bytes:
    """Decompress at most limit+1 bytes, so a gzip bomb costs no more than an honest body."""
    decompressor = zlib.decompressobj(wbits=31)
    try:
        data = decompressor.decompress(raw, limit + 1)
    except zlib.error as err:
        raise BadRequest("request body is not valid gzip", code="invalid_gzip") from err
    if len(data) <= limit and not decompressor.eof:
        raise BadRequest("request body is truncated gzip", code="invalid_gzip")
    return data
