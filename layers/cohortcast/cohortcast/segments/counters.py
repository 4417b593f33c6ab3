"""Filtered counters (`{"event": .., "where": ..}`) counted from a profile's raw events.

Ingest keeps a counter on profiles only for the rules of saved segments, and only from the
moment the segment was saved. Everything else counts from the raw events (the events table,
kept for the retention): a preview, a dry run or an inline announcement audience (whose rule
no profile keeps a counter for), and a backfill (whose profiles predate the counter, or had
it started by ingest before the backfill reached them). Only profiles that performed the
event (their own hour buckets say so) cost a read; the others count zero without one.
"""

from collections.abc import Iterable
from datetime import datetime

from cohortcast.profiles.behaviour import epoch_hour
from cohortcast.segments.engine import CounterSpec
from cohortcast.storage import events as event_store
from cohortcast.storage.profiles import HourlyCounts, ProfileRecord, load_time


def needs_events(record: ProfileRecord, specs: Iterable[CounterSpec]) -> bool:
    """True when counting `specs` for this profile takes a read of its raw events."""
    return any(spec.event in record.behaviour.hourly for spec in specs)


def count_from_events(
    record: ProfileRecord, specs: list[CounterSpec], now: datetime, retention_days: int
) -> HourlyCounts:
    """{counter_id: {epoch_hour: count}} from the profile's raw events within the retention.

    Counters of events the profile never performed are empty without reading anything.
    """
    counts: HourlyCounts = {spec.counter_id: {} for spec in specs}
    wanted = [spec for spec in specs if spec.event in record.behaviour.hourly]
    if not wanted:
        return counts
    oldest_hour = epoch_hour(now) - retention_days * 24
    for stored in event_store.all_for(record.pk):
        matching = [s for s in wanted if s.event == stored.event]
        if not matching:
            continue
        properties = stored.payload.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        moment = load_time(stored.timestamp)  # None for a time stored before times were bounded
        hour = epoch_hour(moment) if moment else None
        if hour is None or hour < oldest_hour:
            continue  # unreadable, or expired and not yet removed by TTL
        for spec in matching:
            if spec.matches_properties(properties):
                hours = counts[spec.counter_id]
                hours[hour] = hours.get(hour, 0) + 1
    return counts


def with_counts_from_events(
    record: ProfileRecord, specs: list[CounterSpec], now: datetime, retention_days: int
) -> ProfileRecord:
    """The record with these counters replaced by counts from raw events (in memory only)."""
    if specs:
        record.behaviour.counters.update(count_from_events(record, specs, now, retention_days))
    return record
