"""Behavioural aggregates on each profile: hourly counts per event name and per filtered counter.

The data (`Behaviour`) and its stored form live in `cohortcast.storage.profiles`; this is what
ingestion does with it. Hour buckets (not day buckets) let windows be exact to the hour:
"within 14d" does not count an event 14 days and 5 minutes ago.
"""

from datetime import datetime

from cohortcast.storage.profiles import Behaviour


def epoch_hour(moment: datetime) -> int:
    """Hours since 1970-01-01T00:00Z: the bucket of behavioural aggregates."""
    return int(moment.timestamp() // 3600)


def add(behaviour: Behaviour, event: str, hour: int, counter_ids: tuple[str, ...] = ()) -> None:
    hours = behaviour.hourly.setdefault(event, {})
    hours[hour] = hours.get(hour, 0) + 1
    for counter_id in counter_ids:
        counted = behaviour.counters.setdefault(counter_id, {})
        counted[hour] = counted.get(hour, 0) + 1


def merge(behaviour: Behaviour, other: Behaviour) -> None:
    for target, source in ((behaviour.hourly, other.hourly), (behaviour.counters, other.counters)):
        for name, hours in source.items():
            mine = target.setdefault(name, {})
            for hour, count in hours.items():
                mine[hour] = mine.get(hour, 0) + count


def prune(behaviour: Behaviour, oldest_hour: int) -> None:
    """Drop buckets older than the retention window, and names left empty."""
    for target in (behaviour.hourly, behaviour.counters):
        for name in list(target):
            kept = {hour: n for hour, n in target[name].items() if hour >= oldest_hour}
            if kept:
                target[name] = kept
            else:
                del target[name]
