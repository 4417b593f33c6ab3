"""The stored profile: what ingestion updates and the segment engine reads."""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cohortcast.clock import isoformat, parse_timestamp
from cohortcast.profiles.behaviour import Behaviour
from cohortcast.profiles.model import ProfileView

# Message ids already counted, newest last: a retried message is recognised and skipped.
# Bounded so the profile stays small; SDK retries happen within seconds, well inside it.
RECENT_IDS_KEPT = 100
_ID_BYTES = 8


def message_fingerprint(message_id: str) -> bytes:
    return hashlib.blake2b(message_id.encode(), digest_size=_ID_BYTES).digest()


@dataclass(slots=True)
class ProfileRecord:
    pk: str
    user_id: str | None
    anonymous_id: str | None
    traits: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    behaviour: Behaviour = field(default_factory=Behaviour)
    recent_ids: bytes = b""
    merged_keys: list[str] = field(default_factory=list)
    created_at: str = ""
    updated_at: str = ""
    version: int = 0  # 0 = not stored yet; optimistic locking on every write
    extra: dict[str, Any] = field(default_factory=dict)  # attributes owned by other domains

    def has_seen(self, fingerprint: bytes) -> bool:
        ids = self.recent_ids
        return any(ids[i : i + _ID_BYTES] == fingerprint for i in range(0, len(ids), _ID_BYTES))

    def remember(self, fingerprint: bytes) -> None:
        self.recent_ids += fingerprint

    def trim_recent(self, keep_at_least: int = 0) -> None:
        """Keep the newest fingerprints; never fewer than the request just applied."""
        keep = max(RECENT_IDS_KEPT, keep_at_least) * _ID_BYTES
        self.recent_ids = self.recent_ids[-keep:]

    def saw(self, moment: datetime, *, active: bool) -> None:
        if self.first_seen is None or moment < self.first_seen:
            self.first_seen = moment
        if active and (self.last_seen is None or moment > self.last_seen):
            self.last_seen = moment

    def view(self, segments: frozenset[str] = frozenset()) -> ProfileView:
        return ProfileView(
            user_id=self.user_id,
            anonymous_id=self.anonymous_id,
            traits=self.traits,
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            hourly=self.behaviour.hourly,
            counters=self.behaviour.counters,
            segments=segments,
        )


def dump_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def load_time(value: str | None) -> datetime | None:
    """A stored time, or None for one we cannot read (such as "999-01-01T00:00:00.000Z",
    written before ingest bounded timestamps): one bad value must not make a profile
    unreadable, and the next event rewrites it."""
    if not value:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def dump_time(value: datetime | None) -> str | None:
    return isoformat(value) if value else None
