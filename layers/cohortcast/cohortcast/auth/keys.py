"""Create and verify API keys. Only a SHA-256 of each key is stored.

Keys are 256-bit random tokens, so a fast hash is enough: there is no low-entropy
secret to protect against guessing, unlike passwords.
"""

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ulid import ULID

from cohortcast.cache import TTLCache
from cohortcast.clock import isoformat
from cohortcast.config import get_settings
from cohortcast.storage import aws, keys

Scope = Literal["write", "admin"]
_PREFIX: dict[str, str] = {"write": "ccw_", "admin": "cca_"}


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


# Keys are remembered per container so hot paths skip the lookup. Unknown keys only briefly
# (a key created a moment ago works within seconds), and the number of entries is bounded:
# write keys are public, so anyone can send a stream of random keys.
KNOWN_KEY_SECONDS = 60.0
UNKNOWN_KEY_SECONDS = 5.0
CACHE_MAX_ENTRIES = 1024


class KeyCache(TTLCache[str, ApiKey | None]):
    """Key digest → record (or None for unknown), least recently used dropped first."""

    def __init__(
        self, max_entries: int = CACHE_MAX_ENTRIES, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(KNOWN_KEY_SECONDS, max_entries=max_entries, clock=clock)

    def put(self, digest: str, record: ApiKey | None, *, ttl: float | None = None) -> None:
        if ttl is None:
            ttl = KNOWN_KEY_SECONDS if record else UNKNOWN_KEY_SECONDS
        super().put(digest, record, ttl=ttl)


_cache = KeyCache()


def verify_key(plaintext: str, cache: KeyCache | None = None) -> ApiKey | None:
    """The key's record, or None when unknown. Known keys are cached for a minute, unknown for 5 s."""
    if not plaintext or len(plaintext) > 256:
        return None
    cache = _cache if cache is None else cache  # an empty cache is falsy
    digest = hash_key(plaintext)
    hit, record = cache.get(digest)
    if hit:
        return record
    item = (
        aws.table(get_settings().data_table)
        .get_item(Key={"pk": keys.api_key_pk(digest), "sk": keys.API_KEY_SK})
        .get("Item")
    )
    record = ApiKey(key_id=item["key_id"], scope=item["scope"], name=item.get("name", "")) if item else None
    cache.put(digest, record)
    return record
