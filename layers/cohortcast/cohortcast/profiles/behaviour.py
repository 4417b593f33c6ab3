"""Compact behavioural aggregates stored on each profile.

Hourly counts per event name (and per filtered counter) over the retention window, stored as
zlib-compressed JSON in one Binary attribute: a busy profile stays a few hundred bytes, which
keeps every profile write at one or two write units. Hour buckets (not day buckets) let
windows be exact to the hour: "within 14d" does not count an event 14 days and 5 minutes ago.
"""

import json
import zlib
from dataclasses import dataclass, field
from datetime import datetime

HourlyCounts = dict[str, dict[int, int]]

# Profiles written before hour buckets hold day buckets ("d", "c"): each is read as the last
# hour of its day, so it counts in a window as long as it did before (never dropped early).
_LAST_HOUR_OF_DAY = 23


def epoch_hour(moment: datetime) -> int:
    """Hours since 1970-01-01T00:00Z: the bucket of behavioural aggregates."""
    return int(moment.timestamp() // 3600)


@dataclass(slots=True)
class Behaviour:
    hourly: HourlyCounts = field(default_factory=dict)
    counters: HourlyCounts = field(default_factory=dict)

    def add(self, event: str, hour: int, counter_ids: tuple[str, ...] = ()) -> None:
        hours = self.hourly.setdefault(event, {})
        hours[hour] = hours.get(hour, 0) + 1
        for counter_id in counter_ids:
            counted = self.counters.setdefault(counter_id, {})
            counted[hour] = counted.get(hour, 0) + 1

    def merge(self, other: "Behaviour") -> None:
        for target, source in ((self.hourly, other.hourly), (self.counters, other.counters)):
            for name, hours in source.items():
                mine = target.setdefault(name, {})
                for hour, count in hours.items():
                    mine[hour] = mine.get(hour, 0) + count

    def prune(self, oldest_hour: int) -> None:
        """Drop buckets older than the retention window, and names left empty."""
        for target in (self.hourly, self.counters):
            for name in list(target):
                kept = {hour: n for hour, n in target[name].items() if hour >= oldest_hour}
                if kept:
                    target[name] = kept
                else:
                    del target[name]


def _dump(counts: HourlyCounts) -> dict[str, dict[str, int]]:
    return {name: {str(hour): n for hour, n in hours.items()} for name, hours in counts.items()}


def _load(doc: dict, hourly: str, daily: str) -> HourlyCounts:
    counts = {
        name: {int(hour): n for hour, n in hours.items()} for name, hours in doc.get(hourly, {}).items()
    }
    for name, days in doc.get(daily, {}).items():
        hours = counts.setdefault(name, {})
        for day, n in days.items():
            hour = int(day) * 24 + _LAST_HOUR_OF_DAY
            hours[hour] = hours.get(hour, 0) + n
    return counts


def encode(behaviour: Behaviour) -> bytes:
    doc = {"h": _dump(behaviour.hourly), "hc": _dump(behaviour.counters)}
    return zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 6)


def decode(blob: bytes | None) -> Behaviour:
    if not blob:
        return Behaviour()
    doc = json.loads(zlib.decompress(bytes(blob)))
    return Behaviour(hourly=_load(doc, "h", "d"), counters=_load(doc, "hc", "c"))
