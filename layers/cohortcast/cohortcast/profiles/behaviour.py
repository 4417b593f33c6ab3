"""Compact behavioural aggregates stored on each profile.

Daily counts per event name (and per filtered counter) over the retention window,
stored as zlib-compressed JSON in one Binary attribute: a busy profile stays a few
hundred bytes, which keeps every profile write at one or two write units.
"""

import json
import zlib
from dataclasses import dataclass, field

DailyCounts = dict[str, dict[int, int]]


@dataclass(slots=True)
class Behaviour:
    daily: DailyCounts = field(default_factory=dict)
    counters: DailyCounts = field(default_factory=dict)

    def add(self, event: str, day: int, counter_ids: tuple[str, ...] = ()) -> None:
        days = self.daily.setdefault(event, {})
        days[day] = days.get(day, 0) + 1
        for counter_id in counter_ids:
            counted = self.counters.setdefault(counter_id, {})
            counted[day] = counted.get(day, 0) + 1

    def merge(self, other: "Behaviour") -> None:
        for target, source in ((self.daily, other.daily), (self.counters, other.counters)):
            for name, days in source.items():
                mine = target.setdefault(name, {})
                for day, count in days.items():
                    mine[day] = mine.get(day, 0) + count

    def prune(self, oldest_day: int) -> None:
        """Drop buckets older than the retention window, and names left empty."""
        for target in (self.daily, self.counters):
            for name in list(target):
                kept = {day: n for day, n in target[name].items() if day >= oldest_day}
                if kept:
                    target[name] = kept
                else:
                    del target[name]


def encode(behaviour: Behaviour) -> bytes:
    doc = {
        "d": {name: {str(day): n for day, n in days.items()} for name, days in behaviour.daily.items()},
        "c": {name: {str(day): n for day, n in days.items()} for name, days in behaviour.counters.items()},
    }
    return zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 6)


def decode(blob: bytes | None) -> Behaviour:
    if not blob:
        return Behaviour()
    doc = json.loads(zlib.decompress(bytes(blob)))
    return Behaviour(
        daily={name: {int(day): n for day, n in days.items()} for name, days in doc.get("d", {}).items()},
        counters={name: {int(day): n for day, n in days.items()} for name, days in doc.get("c", {}).items()},
    )
