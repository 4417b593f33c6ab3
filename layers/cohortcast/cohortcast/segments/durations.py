"""Durations (`7d`, `PT12H`) and the date values rules compare against."""

import re
from datetime import UTC, date, datetime, timedelta

from cohortcast.clock import parse_timestamp

DAY = timedelta(days=1)
# Epoch numbers at or above this are taken as milliseconds (1e11 s is the year 5138).
_MILLISECONDS_FROM = 1e11

_SHORT = re.compile(r"(\d{1,6})([mhdw])")
# ISO-8601 durations without years and months, whose length depends on the calendar.
_ISO = re.compile(r"P(?:(\d{1,6})W|(?:(\d{1,6})D)?(?:T(?:(\d{1,6})H)?(?:(\d{1,6})M)?(?:(\d{1,6})S)?)?)")
_SHORT_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """`Nm`, `Nh`, `Nd`, `Nw` or ISO-8601 (`P7D`, `PT12H`, `P2W`). Raises ValueError."""
    if not isinstance(text, str) or len(text) > 32:
        raise ValueError("a duration is a string like '7d', '12h' or 'P7D'")
    if short := _SHORT.fullmatch(text):
        duration = timedelta(**{_SHORT_UNITS[short[2]]: int(short[1])})
    elif (iso := _ISO.fullmatch(text)) and text not in ("P", "PT") and not text.endswith("T"):
        weeks, days, hours, minutes, seconds = (int(part or 0) for part in iso.groups())
        duration = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    else:
        raise ValueError(f"{text!r} is not a duration: use Nm, Nh, Nd, Nw or ISO-8601 like P7D or PT12H")
    if duration <= timedelta(0):
        raise ValueError("a duration must be longer than zero")
    return duration


def parse_bound(text: str) -> tuple[datetime, bool]:
    """An ISO date or datetime a rule compares against; True when it names a whole day."""
    if not isinstance(text, str) or len(text) > 64:
        raise ValueError("a date is an ISO-8601 string like '2026-11-01' or '2026-11-01T09:00:00Z'")
    if len(text) == 10:
        day = date.fromisoformat(text)
        return datetime(day.year, day.month, day.day, tzinfo=UTC), True
    return parse_timestamp(text), False


def moment_of(value: object) -> datetime | None:
    """A trait or property value as a moment: ISO string or epoch seconds/milliseconds; None if not."""
    try:
        if type(value) is str:
            return parse_timestamp(value)
        if type(value) is int or type(value) is float:
            seconds = value / 1000 if abs(value) >= _MILLISECONDS_FROM else value
            return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def day_start(epoch_day: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=epoch_day)


def hour_start(epoch_hour: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(hours=epoch_hour)
