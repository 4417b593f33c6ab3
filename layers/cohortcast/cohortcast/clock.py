"""Time helpers. Logic takes `now` as a parameter; only edges call `utcnow()`."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_timestamp(value: str) -> datetime:
    """Parse an ISO-8601 timestamp; naive values are taken as UTC. Raises ValueError."""
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError("timestamp must be an ISO-8601 string")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def isoformat(moment: datetime) -> str:
    """Canonical, sortable UTC form with milliseconds: 2026-11-23T18:11:37.123Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def epoch_day(moment: datetime) -> int:
    """Days since 1970-01-01 (UTC): the bucket of behavioural aggregates."""
    return int(moment.timestamp() // 86400)
