"""What ingestion and the segment engine do with a stored profile (`ProfileRecord`, plain data
in `cohortcast.storage.profiles`): message fingerprints, first/last seen, the engine's view."""

import hashlib
from datetime import datetime

from cohortcast.profiles.model import ProfileView
from cohortcast.storage.profiles import ProfileRecord

# Message ids already counted, newest last: a retried message is recognised and skipped.
# Bounded so the profile stays small; SDK retries happen within seconds, well inside it.
RECENT_IDS_KEPT = 100
_ID_BYTES = 8


def message_fingerprint(message_id: str) -> bytes:
    return hashlib.blake2b(message_id.encode(), digest_size=_ID_BYTES).digest()


def has_seen(record: ProfileRecord, fingerprint: bytes) -> bool:
    ids = record.recent_ids
    return any(ids[i : i + _ID_BYTES] == fingerprint for i in range(0, len(ids), _ID_BYTES))


def remember(record: ProfileRecord, fingerprint: bytes) -> None:
    record.recent_ids += fingerprint


def trim_recent(record: ProfileRecord, keep_at_least: int = 0) -> None:
    """Keep the newest fingerprints; never fewer than the request just applied."""
    keep = max(RECENT_IDS_KEPT, keep_at_least) * _ID_BYTES
    record.recent_ids = record.recent_ids[-keep:]


def saw(record: ProfileRecord, moment: datetime, *, active: bool) -> None:
    if record.first_seen is None or moment < record.first_seen:
        record.first_seen = moment
    if active and (record.last_seen is None or moment > record.last_seen):
        record.last_seen = moment


def view(record: ProfileRecord, segments: frozenset[str] = frozenset()) -> ProfileView:
    return ProfileView(
        user_id=record.user_id,
        anonymous_id=record.anonymous_id,
        traits=record.traits,
        first_seen=record.first_seen,
        last_seen=record.last_seen,
        hourly=record.behaviour.hourly,
        counters=record.behaviour.counters,
        segments=segments,
    )
