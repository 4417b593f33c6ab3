"""Request bodies: size limits before any parsing work, gzip, JSON (Segment's limits)."""

import base64
import binascii
import json
import re
import zlib
from typing import Any

from cohortcast.errors import BadRequest

MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_MESSAGES = 2500
# Far deeper than any SDK sends, so a too-deep message is rejected on its own (see messages.py);
# shallow enough that parsing never nears the interpreter's recursion limit.
MAX_DOCUMENT_DEPTH = 512
# A sign and 38 digits (DynamoDB's number precision): longer integers are never converted.
_MAX_INTEGER_TEXT = 39
# A string, unterminated ones included (so the scan stays linear on broken input).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\(?:.|\Z)[^"\\]*)*(?:"|\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENERS = frozenset(b"[{")
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
    return parse_json(raw)


def parse_json(raw: bytes) -> Any:
    """Strict JSON (RFC 8259) with bounded nesting; numbers too big to read become markers.

    The nesting is measured before parsing, so a body 10,000 levels deep costs a scan, not a
    RecursionError. NaN, Infinity and integers over _MAX_INTEGER_TEXT characters (Python
    refuses 4,300 digits, and converting long ones is quadratic) parse to UnreadableNumber,
    so ingest can reject the one message holding them, not the whole batch."""
    deepest = _nesting(raw)
    if deepest > MAX_DOCUMENT_DEPTH:
        raise BadRequest(
            f"request body nests deeper than {MAX_DOCUMENT_DEPTH} levels",
            {"limit_depth": MAX_DOCUMENT_DEPTH},
            code="invalid_json",
        )
    try:
        return json.loads(raw, parse_int=_integer, parse_constant=UnreadableNumber)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        where = f" at line {err.lineno} column {err.colno}" if isinstance(err, json.JSONDecodeError) else ""
        raise BadRequest(f"request body is not valid JSON{where}", code="invalid_json") from err


class UnreadableNumber(str):
    """A number in the body that cannot be stored (NaN, ±Infinity, a huge integer): its text."""

    __slots__ = ()


def _integer(text: str) -> int | UnreadableNumber:
    return int(text) if len(text) <= _MAX_INTEGER_TEXT else UnreadableNumber(text)


def _nesting(raw: bytes) -> int:
    """How deep arrays and objects nest, counting brackets outside strings; stops past the limit."""
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        if byte in _OPENERS:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DOCUMENT_DEPTH:
                    break
        else:
            depth -= 1
    return deepest


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
