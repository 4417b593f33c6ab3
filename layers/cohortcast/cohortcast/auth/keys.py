"""Create and verify API keys. Only a SHA-256 of each key is stored.

Keys are 256-bit random tokens, so a fast hash is enough: there is no low-entropy
secret to protect against guessing, unlike passwords.
"""

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ulid import ULID

from cohortcast.clock import isoformat
from cohortcast.config import get_settings
from cohortcast.storage import aws, keys

Scope = Literal["write", "admin"]
_PREFIX: dict[str, str] = {"write": "ccw_", "admin": "cca_"}
# Verified keys are remembered briefly per container so hot paths skip the lookup.
_CACHE_SECONDS = 60.0
_cache: dict[str, tuple[float, "ApiKey | None"]] = {}


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    scope: Scope
    name: str


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_key(scope: Scope, name: str, now: datetime, plaintext: str | None = None) -> tuple[str, ApiKey]:
    """Store a new key and return (plaintext, record). The plaintext is never stored."""
    if scope not in _PREFIX:
        raise ValueError(f"scope must be one of {sorted(_PREFIX)}")
    plaintext = plaintext or _PREFIX[scope] + secrets.token_urlsafe(32)
    record = ApiKey(key_id=str(ULID()), scope=scope, name=name)
    aws.table(get_settings().data_table).put_item(
        Item={
            "pk": keys.api_key_pk(hash_key(plaintext)),
            "sk": keys.API_KEY_SK,
            "kind": "api_key",
            "key_id": record.key_id,
            "scope": scope,
            "name": name,
            "hint": plaintext[:8],
            "created_at": isoformat(now),
        }
    )
    return plaintext, record


def verify_key(plaintext: str) -> ApiKey | None:
    """The key's record, or None when unknown. Cached for a minute per container."""
    if not plaintext or len(plaintext) > 256:
        return None
    digest = hash_key(plaintext)
    cached = _cache.get(digest)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    item = (
        aws.table(get_settings().data_table)
        .get_item(Key={"pk": keys.api_key_pk(digest), "sk": keys.API_KEY_SK})
        .get("Item")
    )
    record = ApiKey(key_id=item["key_id"], scope=item["scope"], name=item.get("name", "")) if item else None
    _cache[digest] = (time.monotonic() + _CACHE_SECONDS, record)
    return record
