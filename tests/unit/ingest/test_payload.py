"""Request bodies: limits before parsing, gzip, JSON errors."""

import base64
import gzip
import json

import pytest

from cohortcast.errors import BadRequest
from cohortcast.ingest.payload import decode_body


def test_gzip_body_is_decoded():
    body = base64.b64encode(gzip.compress(json.dumps({"userId": "u1"}).encode())).decode()
    assert decode_body(body, is_base64=True, content_encoding="gzip", limit=1000) == {"userId": "u1"}


def test_gzip_bomb_stops_at_the_limit():
    bomb = base64.b64encode(gzip.compress(b"[" + b"0," * 5_000_000 + b"0]")).decode()
    with pytest.raises(BadRequest) as error:
        decode_body(bomb, is_base64=True, content_encoding="gzip", limit=500 * 1024)
    assert error.value.code == "payload_too_large"


@pytest.mark.parametrize(
    ("body", "encoding", "code"),
    [
        ("{bad json", None, "invalid_json"),
        ("", None, "invalid_json"),
        ("x" * 2000, None, "payload_too_large"),
        ("{}", "br", "bad_encoding"),
    ],
)
def test_bad_bodies_are_named(body, encoding, code):
    with pytest.raises(BadRequest) as error:
        decode_body(body, is_base64=False, content_encoding=encoding, limit=1000)
    assert error.value.code == code


def test_corrupt_gzip_is_rejected():
    with pytest.raises(BadRequest) as error:
        decode_body(
            base64.b64encode(b"not gzip").decode(), is_base64=True, content_encoding="gzip", limit=1000
        )
    assert error.value.code == "invalid_gzip"


@pytest.mark.parametrize("encoding", [None, "identity", "gzip"])
def test_gzip_body_is_read_whatever_content_encoding_says(encoding):
    # A gzip body is known by its magic bytes; a proxy or client may drop or mislabel the header.
    body = base64.b64encode(gzip.compress(b'{"userId": "u1"}')).decode()
    assert decode_body(body, is_base64=True, content_encoding=encoding, limit=1000) == {"userId": "u1"}


def test_truncated_gzip_without_a_header_is_named_as_gzip():
    truncated = gzip.compress(json.dumps({"userId": "u1", "pad": "x" * 500}).encode())[:20]
    with pytest.raises(BadRequest) as error:
        decode_body(base64.b64encode(truncated).decode(), is_base64=True, content_encoding=None, limit=1000)
    assert error.value.code == "invalid_gzip"
