"""Hour-bucket windows: the one counting loop, and the bucket walks explain and next-flip share.

A window `w` (whole hours) covers every UTC hour bucket that overlaps (now - w, now]: the buckets
epoch_hour(now - w) through the current hour, so a window starts at `start = epoch_hour(now - w)`.
Buckets dated later (clock skew) count as the current hour. A bucket leaves the window when its
hour's end is `w` ago. `active_days` counts the UTC days of the buckets in the window; a trend over
`Nd` compares the N UTC days ending today with the N days before them (docs/rules.md).
"""

import math
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from cohortcast.segments.durations import hour_start

Hours = dict[int, int]


def window_total(hours: Hours | None, start: int, limit: float = math.inf) -> int:
    """Events in the buckets from hour `start` on; stops once the total reaches `limit`.

    The hot path of every "at least N" condition: it walks the keys and reads counts only inside
    the window (most buckets of an active user are older), and stops as soon as N is reached.
    """
    total = 0
    if hours:
        for hour in hours:
            if hour >= start:
                total += hours[hour]
                if total >= limit:
                    break
    return total


def active_hours(hours: Hours, start: int) -> list[int]:
    """The buckets in the window that hold events."""
    return [hour for hour, count in hours.items() if hour >= start and count]


def active_days(hourly: dict[str, Hours], start: int) -> dict[int, int]:
    """UTC days with an event in the window, each with its last hour holding one."""
    last: dict[int, int] = {}
    for hours in hourly.values():
        for hour, count in hours.items():
            if hour >= start and count:
                day = hour // 24
                if last.get(day, -1) < hour:
                    last[day] = hour
    return last


def distinct_events(hourly: dict[str, Hours], start: int, prefix: str | None) -> dict[str, int]:
    """Events performed in the window (names starting with `prefix`), each with its last hour."""
    last: dict[str, int] = {}
    for name, hours in hourly.items():
        if prefix is None or name.startswith(prefix):
            active = active_hours(hours, start)
            if active:
                last[name] = max(active)
    return last


def trend_totals(hours: Hours | None, today: int, days: int) -> tuple[int, int]:
    """Events in the `days` UTC days ending `today`, and in the `days` days before them."""
    current_start, previous_start = today - days + 1, today - 2 * days + 1
    current = previous = 0
    for hour, count in (hours or {}).items():
        day = hour // 24
        if day >= current_start:
            current += count
        elif day >= previous_start:
            previous += count
    return current, previous


def trend_change(current: int, previous: int) -> float:
    """(current - previous) / previous; from nothing to something is +inf, nothing to nothing is 0."""
    if previous == 0:
        return math.inf if current > 0 else 0.0
    return (current - previous) / previous


def leave_time(hour: int, window: timedelta) -> datetime:
    """When hour bucket `hour` stops overlapping (now - window, now]."""
    return hour_start(hour + 1) + window


def leave_times(last_hours: list[int], window: timedelta) -> Iterator[tuple[datetime, int]]:
    """Each counted item (a day, an event) leaves with its last hour, oldest first, counting 1."""
    return ((leave_time(hour, window), 1) for hour in sorted(last_hours))


def bucket_leave_times(hours: Hours, start: int, window: timedelta) -> Iterator[tuple[datetime, int]]:
    """When each non-empty bucket in the window leaves it, oldest first, with its count."""
    return ((leave_time(hour, window), hours[hour]) for hour in sorted(active_hours(hours, start)))


def first_change(
    leaving: Iterator[tuple[datetime, int]], total: int, holds: Callable[[int], bool]
) -> datetime | None:
    """The first leave time at which the windowed total stops (or starts) satisfying `holds`."""
    now_value = holds(total)
    for moment, count in leaving:
        total -= count
        if holds(total) != now_value:
            return moment
    return None
