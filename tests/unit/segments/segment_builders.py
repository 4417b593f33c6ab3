"""A fixed clock, a profile builder and a compile helper for the segment engine's tests."""

from datetime import UTC, datetime, timedelta
from typing import Any

from cohortcast.clock import epoch_day
from cohortcast.profiles.behaviour import epoch_hour
from cohortcast.profiles.model import ProfileView
from cohortcast.segments.engine import CompiledRule, compile_rule
from cohortcast.segments.rules import parse_rule

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TODAY = epoch_day(NOW)
THIS_HOUR = epoch_hour(NOW)


def days_ago(n: float) -> datetime:
    return NOW - timedelta(days=n)


def user(
    *,
    traits: dict[str, Any] | None = None,
    tenure_days: float | None = 365,
    seen_days_ago: float | None = 0.1,
    events: dict[str, dict[int, int]] | None = None,
    counters: dict[str, dict[int, int]] | None = None,
    segments: frozenset[str] = frozenset(),
) -> ProfileView:
    """A profile; `events` map a name to {days ago: count}, each in the hour bucket that long before NOW."""
    return ProfileView(
        user_id="u1",
        traits=traits or {},
        first_seen=None if tenure_days is None else days_ago(tenure_days),
        last_seen=None if seen_days_ago is None else days_ago(seen_days_ago),
        hourly={name: _hours(days) for name, days in (events or {}).items()},
        counters={key: _hours(days) for key, days in (counters or {}).items()},
        segments=segments,
    )


def _hours(days_ago: dict[int, int]) -> dict[int, int]:
    return {THIS_HOUR - ago * 24: n for ago, n in days_ago.items()}


def compiled(raw: dict[str, Any], segments: dict[str, dict[str, Any]] | None = None) -> CompiledRule:
    rules = {key: parse_rule(value) for key, value in (segments or {}).items()}
    return compile_rule(parse_rule(raw), segment_rule=rules.get)


def matches(raw: dict[str, Any], profile: ProfileView, now: datetime = NOW) -> bool:
    return compiled(raw).matches(profile, now)
