"""Create and verify API keys. Only a SHA-256 of each key is stored.

Keys are 256-bit random tokens, so a fast hash is enough: there is no low-entropy
secret to protect against guessing, unlike passwords.
"""

import hashlib
import secrets
import time
from collections.abc import Callable
from datetime import datetime

from ulid import ULID

from cohortcast.cache import TTLCache
from cohortcast.clock import isoformat
from cohortcast.storage import api_keys
from cohortcast.storage.api_keys import ApiKey, Scope

_PREFIX: dict[str, str] = {"write": "ccw_", "admin": "cca_"}


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_key(scope: Scope, name: str, now: datetime, plaintext: str | None = None) -> tuple[str, ApiKey]:
    """Store a new key and return (plaintext, record). The plaintext is never stored."""
    if scope not in _PREFIX:
        raise ValueError(f"scope must be one of {sorted(_PREFIX)}")
    plaintext = plaintext or _PREFIX[scope] + secrets.token_urlsafe(32)
    record = ApiKey(key_id=str(ULID()), scope=scope, name=name)
    api_keys.put_api_key(hash_key(plaintext), record, hint=plaintext[:8], created_at=isoformat(now))
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
    record = api_keys.get_api_key(digest)
    cache.put(digest, record)
    return record
