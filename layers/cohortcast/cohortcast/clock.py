"""Time helpers. Logic takes `now` as a parameter; only edges call `utcnow()`."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_timestamp(value: str) -> datetime:
    """Parse an ISO-8601 timestamp into UTC; naive values are taken as UTC. Raises ValueError.

    Normalised to UTC here so that `isoformat` of anything parsed cannot overflow
    (0001-01-01T00:00:00+01:00 is in year 0 in UTC)."""
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError("timestamp must be an ISO-8601 string")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as err:
        raise ValueError(f"timestamp {value!r} is outside years 1-9999 in UTC") from err


def isoformat(moment: datetime) -> str:
    """Canonical, sortable UTC form with milliseconds: 2026-11-23T18:11:37.123Z.

    Formatted by hand: strftime's %Y drops the zero padding of years before 1000, and
    `parse_timestamp` must read back every time we store."""
    u = moment.astimezone(UTC)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
        f".{u.microsecond // 1000:03d}Z"
    )


def epoch_day(moment: datetime) -> int:
    """Days since 1970-01-01 (UTC): the bucket of behavioural aggregates."""
    return int(moment.timestamp() // 86400)
