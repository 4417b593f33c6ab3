"""Store a request's messages: raw events, profile traits, aggregates, identity merges.

Crash safety without transactions: raw events are written first under keys that a
retry reproduces (so a re-write overwrites), then each profile is written with
optimistic locking, recording the fingerprints of the messages it counted. A retried
message whose fingerprint is on the profile is skipped, so aggregates count it once.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cohortcast.clock import isoformat
from cohortcast.ingest.messages import Message, Rejected, normalise, retention_expiry
from cohortcast.profiles import behaviour
from cohortcast.profiles.behaviour import epoch_hour
from cohortcast.profiles.record import has_seen, message_fingerprint, remember, saw, trim_recent
from cohortcast.segments.registry import get_registry
from cohortcast.storage import events as event_store
from cohortcast.storage import keys
from cohortcast.storage import profiles as profile_store
from cohortcast.storage.profiles import ProfileRecord

_MAX_WRITE_ATTEMPTS = 8


@dataclass(slots=True)
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Batch:
    """One request's raw messages plus what the batch envelope adds to each."""

    items: list[Any]
    implied_type: str | None = None
    sent_at: Any = None
    context: dict | None = None
    integrations: dict | None = None


def ingest(batch: Batch, *, received_at: datetime, retention_days: int) -> IngestResult:
    result = IngestResult()
    messages: list[Message] = []
    for index, raw in enumerate(batch.items):
        try:
            messages.append(
                normalise(
                    raw,
                    index=index,
                    received_at=received_at,
                    implied_type=batch.implied_type,
                    batch_sent_at=batch.sent_at,
                    batch_context=batch.context,
                    batch_integrations=batch.integrations,
                )
            )
        except Rejected as rej:
            result.rejected.append(
                {"index": index, "code": rej.code, "message": rej.message, "field": rej.field}
            )
    if messages:
        fresh = _store(messages, received_at, retention_days)
        result.accepted, result.duplicates = len(messages), len(messages) - fresh
    return result


@dataclass(slots=True)
class _ProfileWork:
    """Everything one request does to one profile."""

    target: str
    messages: list[Message]
    sources: list[ProfileRecord]  # profiles merged into this one (anonymous or aliased ids)
    source_keys: list[str]
    record: ProfileRecord | None = None
    fresh: list[Message] = field(default_factory=list)


def _store(messages: list[Message], received_at: datetime, retention_days: int) -> int:
    works = _plan(messages)
    records = profile_store.get_many([pk for w in works for pk in (w.target, *w.source_keys)])
    oldest_hour = epoch_hour(received_at) - retention_days * 24
    now = isoformat(received_at)
    for work in works:
        work.sources = [records[pk] for pk in work.source_keys if pk in records]
        work.record = records.get(work.target) or profile_store.new_record(work.target)
        work.fresh = _apply(work.record, work, oldest_hour, now)
    event_store.put_many(
        _stored_event(work.target, message, received_at, retention_days)
        for work in works
        for message in work.fresh
    )
    fresh_total = 0
    for work in works:
        fresh_total += _save(work, oldest_hour, now)
        for source_pk in work.source_keys:
            _finish_merge(source_pk, work.target, now)
    return fresh_total


def _plan(messages: list[Message]) -> list[_ProfileWork]:
    """Group messages by the profile they land on, following aliases and merges."""
    mentioned = {pk for m in messages for pk in (_own_key(m), *_merge_sources(m))}
    aliases = profile_store.resolve_aliases(mentioned)
    merged_into: dict[str, str] = {}
    for m in messages:
        target = aliases.get(_own_key(m), _own_key(m))
        for source in _merge_sources(m):
            if source not in aliases and source != target:
                merged_into.setdefault(source, target)
    by_target: dict[str, list[Message]] = defaultdict(list)
    for m in messages:
        own = aliases.get(_own_key(m), _own_key(m))
        by_target[merged_into.get(own, own)].append(m)
    sources_of: dict[str, list[str]] = defaultdict(list)
    for source, target in merged_into.items():
        sources_of[target].append(source)
        by_target.setdefault(target, [])
    return [_ProfileWork(target, msgs, [], sources_of.get(target, [])) for target, msgs in by_target.items()]


def _own_key(m: Message) -> str:
    return keys.profile_pk(m.user_id, m.anonymous_id)


def _merge_sources(m: Message) -> tuple[str, ...]:
    """Identities a message says belong to its user: anonymousId beside userId, alias previousId."""
    if m.type == "alias" and m.previous_id is not None:
        return (keys.profile_pk(user_id=m.previous_id), keys.profile_pk(anonymous_id=m.previous_id))
    if m.user_id is not None and m.anonymous_id is not None:
        return (keys.profile_pk(anonymous_id=m.anonymous_id),)
    return ()


def _apply(record: ProfileRecord, work: _ProfileWork, oldest_hour: int, now: str) -> list[Message]:
    """Apply what this record has not counted yet; return the messages that were new."""
    for source in work.sources:
        merge_mark = message_fingerprint(f"merge:{source.pk}")
        if not has_seen(record, merge_mark):
            _absorb(record, source)
            remember(record, merge_mark)
    # Identities merged in stay listed even when they had no profile yet (erasure needs them).
    record.merged_keys = list(dict.fromkeys([*record.merged_keys, *work.source_keys]))
    fresh = []
    for m in sorted(work.messages, key=lambda m: m.timestamp):
        mark = message_fingerprint(m.message_id)
        if has_seen(record, mark):
            continue
        remember(record, mark)
        _apply_message(record, m, oldest_hour)
        fresh.append(m)
    trim_recent(record, keep_at_least=len(work.messages) + len(work.sources))
    behaviour.prune(record.behaviour, oldest_hour)
    record.created_at = record.created_at or now
    record.updated_at = now
    return fresh


def _apply_message(record: ProfileRecord, m: Message, oldest_hour: int) -> None:
    saw(record, m.timestamp, active=m.is_activity)
    if m.event is not None:
        hour = epoch_hour(m.timestamp)
        if hour >= oldest_hour:
            behaviour.add(record.behaviour, m.event, hour, _counter_ids(m))
    if m.type == "identify" and m.traits:
        record.traits.update(m.traits)
    elif m.type == "group" and m.group_id is not None:
        record.groups[m.group_id] = {**record.groups.get(m.group_id, {}), **(m.traits or {})}


def _counter_ids(m: Message) -> tuple[str, ...]:
    """Filtered counters (event + `where` on properties) that segment rules registered for this event."""
    specs = get_registry().counter_specs()  # cached per container: no request per call
    if not specs:
        return ()
    properties = m.payload.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    return tuple(s.counter_id for s in specs if s.event == m.event and s.matches_properties(properties))


def _absorb(record: ProfileRecord, source: ProfileRecord) -> None:
    """Merge an anonymous (or previous) profile into the user's; the user's traits win."""
    record.traits = {**source.traits, **record.traits}
    for group_id, traits in source.groups.items():
        record.groups[group_id] = {**traits, **record.groups.get(group_id, {})}
    if source.first_seen:
        saw(record, source.first_seen, active=False)
    if source.last_seen:
        saw(record, source.last_seen, active=True)
    behaviour.merge(record.behaviour, source.behaviour)
    record.recent_ids = source.recent_ids + record.recent_ids
    record.merged_keys = list(dict.fromkeys([*record.merged_keys, source.pk, *source.merged_keys]))


def _save(work: _ProfileWork, oldest_hour: int, now: str) -> int:
    record = work.record
    assert record is not None
    for _ in range(_MAX_WRITE_ATTEMPTS):
        try:
            profile_store.save(record)
            return len(work.fresh)
        except profile_store.StaleProfile:
            # Another request wrote this profile meanwhile: re-apply on top of its version.
            # The raw events of work.fresh are already stored; a subset of them stays fresh.
            record = profile_store.get(work.target) or profile_store.new_record(work.target)
            work.fresh = _apply(record, work, oldest_hour, now)
    raise RuntimeError(f"profile {work.target} kept changing while being written")


def _finish_merge(source_pk: str, target_pk: str, now: str) -> None:
    """Idempotent clean-up after the target profile holds the merged data."""
    profile_store.put_alias(source_pk, target_pk, now)
    event_store.move_all(source_pk, target_pk)
    profile_store.delete(source_pk)


def _stored_event(
    profile_pk: str, m: Message, received_at: datetime, retention_days: int
) -> event_store.StoredEvent:
    return event_store.StoredEvent(
        profile_pk=profile_pk,
        sort_time=m.sort_time,
        message_id=m.message_id,
        type=m.type,
        event=m.event,
        timestamp=isoformat(m.timestamp),
        received_at=isoformat(received_at),
        expires_at=retention_expiry(m.timestamp, retention_days),
        payload=m.payload,
    )
