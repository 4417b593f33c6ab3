"""Signed unsubscribe/preferences tokens: the link itself proves which user and topic it is for.

Layout before base64url (no padding):
    version (1 byte) | user_id length (2, big-endian) | user_id | topic length (2) | topic
    | email hash length (2) | email hash (version 2 only) | HMAC-SHA256 (32)
The email hash (the suppression list's, `email.email_hash`) lets a link replayed after the user
was erased still opt the address out, with nothing but that hash stored.
The MAC covers everything before it, prefixed with a context label so the same secret used
elsewhere can never produce a valid token. The ids are signed, not encrypted: they are readable.
"""

import base64
import hashlib
import hmac
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from cohortcast.errors import BadRequest

_VERSION = 2
_VERSIONS = (1, 2)  # links in emails already sent stay valid
_CONTEXT = b"cohortcast/unsubscribe-token/v1\x00"
_MAC_SIZE = 32
_MAX_TOKEN_CHARS = 1024  # longest legitimate token is far shorter; refuse before decoding
_TOKEN_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
_LENGTH = struct.Struct(">H")


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: str
    topic: str | None  # None: the link is about all of the user's email, not one topic
    email_hash: str | None = None  # the recipient address's suppression hash (version 2 links)


def make_token(secret: bytes, user_id: str, topic: str | None, email_hash: str | None = None) -> str:
    """A URL-safe token for (user, topic, address hash). An empty topic means no topic."""
    if not user_id:
        raise ValueError("user_id must not be empty")
    payload = bytes([_VERSION]) + _pack(user_id) + _pack(topic or "") + _pack(email_hash or "")
    return base64.urlsafe_b64encode(payload + _mac(secret, payload)).rstrip(b"=").decode("ascii")


def read_token(secret: bytes | Sequence[bytes], token: str) -> TokenClaims:
    """Verify and decode a token. Pass several secrets (newest first) to accept during rotation."""
    raw = _decode(token)
    payload, mac = raw[:-_MAC_SIZE], raw[-_MAC_SIZE:]
    secrets = [secret] if isinstance(secret, bytes) else secret
    # Check every secret so the time taken does not reveal which one matched.
    matches = [hmac.compare_digest(_mac(candidate, payload), mac) for candidate in secrets]
    if not payload or payload[0] not in _VERSIONS or not any(matches):
        raise _invalid()
    user_id, rest = _unpack(payload[1:])
    topic, rest = _unpack(rest)
    address_hash, rest = _unpack(rest) if payload[0] >= 2 else ("", rest)
    if rest or not user_id:
        raise _invalid()
    return TokenClaims(user_id=user_id, topic=topic or None, email_hash=address_hash or None)


def _mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, _CONTEXT + payload, hashlib.sha256).digest()


def _pack(value: str) -> bytes:
    encoded = value.encode("utf-8")
    if len(encoded) > 0xFFFF:
        raise ValueError("token field too long")
    return _LENGTH.pack(len(encoded)) + encoded


def _unpack(data: bytes) -> tuple[str, bytes]:
    if len(data) < _LENGTH.size:
        raise _invalid()
    (length,) = _LENGTH.unpack_from(data)
    end = _LENGTH.size + length
    if len(data) < end:
        raise _invalid()
    return data[_LENGTH.size : end].decode("utf-8"), data[end:]


def _decode(token: str) -> bytes:
    if len(token) > _MAX_TOKEN_CHARS or not _TOKEN_ALPHABET.fullmatch(token):
        raise _invalid()
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except ValueError as exc:  # binascii.Error: impossible length
        raise _invalid() from exc
    if len(raw) <= _MAC_SIZE:
        raise _invalid()
    return raw


def _invalid() -> BadRequest:
    return BadRequest("invalid or tampered token")
