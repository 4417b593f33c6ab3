"""Identity verification of in-app feed users (Intercom-style).

The customer's backend signs each userId with the workspace's identity secret and hands the
hash to the widget, which sends it with the userId (X-Cohortcast-User-Hash). The write key
is public, so without the hash anyone could read any user's feed by typing an id.

The secret is the IdentitySecret secret, JSON {"current", "previous", "previous_valid_until"}:
a rotation makes a new current and keeps the old one valid for a grace period, so hashes the
backend signed before it switched keep working.
"""

import hashlib
import hmac
from datetime import datetime, timedelta
from secrets import token_hex

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_serializer

from cohortcast.cache import TTLCache
from cohortcast.clock import isoformat
from cohortcast.config import get_settings
from cohortcast.storage import secrets as secret_store

# Each container reads the secret at most this often: a rotation reaches every container
# within it, so the backend should switch to the new secret only after this long.
IDENTITY_SECRET_CACHE_SECONDS = 300.0
DEFAULT_GRACE_DAYS = 7


class IdentitySecrets(BaseModel):
    """The secret's JSON: the current key, and the previous one with the end of its grace."""

    model_config = ConfigDict(frozen=True)

    current: str = Field(min_length=1)
    previous: str | None = None
    previous_valid_until: AwareDatetime | None = None

    @field_serializer("previous_valid_until")
    def _timestamp(self, moment: datetime | None) -> str | None:
        return isoformat(moment) if moment else None

    def accepted(self, now: datetime) -> list[str]:
        """The current key, and the previous one while its grace lasts (one without an end never)."""
        keys = [self.current]
        if self.previous and self.previous_valid_until and now < self.previous_valid_until:
            keys.append(self.previous)
        return keys


_cache: TTLCache[str, IdentitySecrets] = TTLCache(IDENTITY_SECRET_CACHE_SECONDS, max_entries=1)


def user_hash(secret: str, user_id: str) -> str:
    """hex(HMAC-SHA256(secret, userId)), what the customer's backend computes for the widget."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def verify_user_hash(
    user_id: str, given: str | None, now: datetime, secrets: IdentitySecrets | None = None
) -> bool:
    """Whether `given` is the user's hash under a key accepted at `now` (hex in any case).

    `secrets` defaults to the workspace's, read through the container's cache."""
    if not given:
        return False
    secrets = identity_secrets() if secrets is None else secrets
    candidate = given.lower().encode()  # bytes: compare_digest refuses non-ASCII str
    # Compare with every key so the time taken does not reveal which one matched.
    matches = [
        hmac.compare_digest(user_hash(key, user_id).encode(), candidate) for key in secrets.accepted(now)
    ]
    return any(matches)


def identity_secrets() -> IdentitySecrets:
    """The workspace's identity secret, cached in the container for a few minutes."""
    secret_id = _secret_id()
    return _cache.get_or_load(secret_id, lambda: _read(secret_id))


def write_identity_secrets(value: IdentitySecrets) -> None:
    """Store a new version of the secret (this container sees it at once, others within the cache)."""
    secret_id = _secret_id()
    secret_store.put_secret_string(secret_id, value.model_dump_json())
    _cache.put(secret_id, value)


def rotate_identity_secret(now: datetime, grace_days: int = DEFAULT_GRACE_DAYS) -> str:
    """Make a new current key and keep the old one valid for `grace_days`; returns the new key."""
    if grace_days < 0:
        raise ValueError("grace_days must be 0 or more")
    secret_id = _secret_id()
    replaced = _read(secret_id)  # not the cached copy: a rotation made since would be dropped
    new_key = token_hex(32)
    write_identity_secrets(
        IdentitySecrets(
            current=new_key,
            previous=replaced.current,
            previous_valid_until=now + timedelta(days=grace_days),
        )
    )
    return new_key


def _secret_id() -> str:
    secret_id = get_settings().identity_secret_arn
    if not secret_id:
        raise RuntimeError("IDENTITY_SECRET_ARN must be set")
    return secret_id


def _read(secret_id: str) -> IdentitySecrets:
    return IdentitySecrets.model_validate_json(secret_store.secret_string(secret_id))
