"""Users as the management API sees them: look-up (following merges), events, and the profile's
part of erasure (the whole of it is `cohortcast.services.erasure`)."""

from datetime import date, timedelta

from cohortcast.errors import NotFound
from cohortcast.storage import events as event_store
from cohortcast.storage import keys
from cohortcast.storage import profiles as profile_store
from cohortcast.storage.profiles import ProfileRecord

_EPOCH = date(1970, 1, 1)


def find_profile(user_id: str) -> ProfileRecord:
    """The user's profile; an id that was merged into another user leads to that user."""
    pk = keys.profile_pk(user_id=user_id)
    pk = profile_store.resolve_aliases([pk]).get(pk, pk)
    record = profile_store.get(pk)
    if record is None:
        raise NotFound(f"no user with id {user_id!r}", code="user_not_found")
    return record


def anonymous_ids(record: ProfileRecord) -> list[str]:
    """The anonymous ids merged into this profile (merged keys that name no user id)."""
    return [anon for _, anon in map(keys.profile_ids, record.merged_keys) if anon is not None]


def daily_counts_by_date(counts: dict[str, dict[int, int]]) -> dict[str, dict[str, int]]:
    """Hourly aggregates summed per UTC date (ISO), for people to read."""
    by_date: dict[str, dict[str, int]] = {}
    for name, hours in sorted(counts.items()):
        days = by_date[name] = {}
        for hour, n in sorted(hours.items()):
            day = (_EPOCH + timedelta(days=hour // 24)).isoformat()
            days[day] = days.get(day, 0) + n
    return by_date


def user_events(
    user_id: str, limit: int, cursor: str | None
) -> tuple[list[event_store.StoredEvent], str | None]:
    return event_store.page(find_profile(user_id).pk, limit, cursor)


def erase_history(record: ProfileRecord) -> tuple[int, int]:
    """Erasure's profile part, all but the profile itself: the raw events of the profile and of
    every identity merged into it, and those identities' aliases. (events, aliases) removed."""
    merged = record.merged_keys
    events = sum(event_store.delete_all(pk) for pk in (record.pk, *merged))
    for source_pk in merged:
        profile_store.delete_alias(source_pk)
    return events, len(merged)


def delete_profile(record: ProfileRecord) -> None:
    profile_store.delete(record.pk)
