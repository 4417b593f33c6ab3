"""Who gets an announcement on a channel now, who is skipped (with a reason) and who waits.

Pure functions over plain data; `now` is a parameter. The order of the checks is the order
the reasons are reported in: cancelled, no address (or an invalid one), suppressed, unsubscribed, (local time:
deferred), frequency cap, quiet hours. `priority: critical` bypasses the frequency cap and
quiet hours (security and outage notices must not wait for the morning), never an opt-out or
the suppression list, nor an explicit `local_time`.

Quiet hours defer, they don't drop: the record is stored `deferred`, due at the end of the
recipient's quiet hours (in their `timezone` trait, else the workspace default), and the settle
job sends it then, re-checking everything else. `skipped.quiet_hours` is only used when a
record would wait more than `MAX_DEFERRAL` after it was first planned (for a `local_time`
announcement: after the recipient's local send time).

`email_if_unread_after` announcements (email + in-app) defer every email the same way until
the wait is over, then skip (`read_in_app`) whoever has read the post in the feed by then.

`local_time` announcements defer the same way: each recipient's record waits, `deferred` with
reason `local_time`, until that time in their zone, then the settle job resumes it and every
check runs again at that moment.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SEND, SKIP, DEFER = "send", "skip", "defer"
# A record deferred for longer than this (an announcement published days ago and re-queued,
# or quiet hours misconfigured to cover almost the whole day) is skipped with `quiet_hours`.
MAX_DEFERRAL = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Decision:
    action: str
    reason: str | None = None
    until: datetime | None = None  # DEFER: when the quiet hours end (UTC)


class InvalidAddress(ValueError):
    """The address trait is there but can't be sent to; the message says why (never the address)."""


@dataclass(frozen=True, slots=True)
class Audience:
    """What the policy knows about one recipient."""

    address: str | None
    suppressed: bool
    unsubscribed_all: bool
    topics_off: frozenset[str]
    sends: dict[str, str]  # announcement id → ISO time (frequency-cap window bookkeeping)
    timezone: str | None
    address_problem: str | None = None  # why the address trait can't be used (skipped invalid_address)
    read_in_app: bool = False  # has read the announcement in the in-app feed

    @classmethod
    def of(
        cls,
        address: str | None,
        suppressed: bool,
        preferences: Any,
        traits: dict[str, Any],
        address_problem: str | None = None,
        read_in_app: bool = False,
    ) -> "Audience":
        """From the deliverer's reads: a profile's traits and the user's stored preferences."""
        return cls(
            address=address,
            suppressed=suppressed,
            unsubscribed_all=preferences.unsubscribed_all,
            topics_off=preferences.topics_off,
            sends=preferences.sends,
            timezone=traits.get("timezone"),
            address_problem=address_problem,
            read_in_app=read_in_app,
        )


@dataclass(frozen=True, slots=True)
class Rules:
    """What the policy knows about the announcement and the workspace."""

    announcement_id: str
    topic: str | None
    critical: bool
    cancelled: bool
    cap: tuple[int, int] | None  # (count, days)
    quiet_hours: tuple[str, str] | None
    default_timezone: str
    opt_outs_apply: bool = True  # email preferences; push/SMS are opted out on the device/carrier
    check_cap: bool = True  # False when resending a claim that already counted against the cap
    first_planned_at: datetime | None = None  # for MAX_DEFERRAL, and the day local_time counts from
    local_time: str | None = None  # "HH:MM": send then in the recipient's zone (next occurrence)
    unread_wait_until: datetime | None = None  # email_if_unread_after: wait, then only if unread


def decide(rules: Rules, audience: Audience, now: datetime) -> Decision:
    if rules.cancelled:
        return Decision(SKIP, "cancelled")
    if not audience.address:
        return Decision(SKIP, "invalid_address" if audience.address_problem else "no_address")
    if audience.suppressed:
        return Decision(SKIP, "suppressed")
    if rules.opt_outs_apply and (
        audience.unsubscribed_all or (rules.topic is not None and rules.topic in audience.topics_off)
    ):
        return Decision(SKIP, "unsubscribed")
    zone = zone_of(audience.timezone, rules.default_timezone)
    planned_at = rules.first_planned_at
    if rules.unread_wait_until is not None:
        if now < rules.unread_wait_until:
            return Decision(DEFER, "unread_wait", rules.unread_wait_until)
        if audience.read_in_app:
            return Decision(SKIP, "read_in_app")
        planned_at = rules.unread_wait_until  # quiet hours and local time count from here
    if rules.local_time and planned_at is not None:
        planned_at = local_send_time(rules.local_time, zone, planned_at)
        if planned_at > now:  # even when critical: the author chose the recipients' local time
            return Decision(DEFER, "local_time", planned_at)
    if rules.critical:
        return Decision(SEND)
    if rules.check_cap and rules.cap and cap_reached(rules, audience.sends, now):
        return Decision(SKIP, "frequency_cap")
    if rules.quiet_hours:
        until = quiet_until(rules.quiet_hours, zone, now)
        if until is not None:
            if planned_at and until - planned_at > MAX_DEFERRAL:
                return Decision(SKIP, "quiet_hours")
            return Decision(DEFER, "quiet_hours", until)
    return Decision(SEND)


def local_send_time(hhmm: str, zone: ZoneInfo, planned_at: datetime) -> datetime:
    """The first `hhmm` in `zone` at or after `planned_at` (UTC): today there if it is still to
    come, else tomorrow. Computed from when the announcement was planned, not from when a queue
    message happens to run, so every retry and resume agrees on the moment."""
    local = planned_at.astimezone(zone)
    target = datetime.combine(local.date(), _hhmm(hhmm), tzinfo=zone)
    if target.astimezone(UTC) < planned_at:
        target = datetime.combine(local.date() + timedelta(days=1), _hhmm(hhmm), tzinfo=zone)
    return target.astimezone(UTC)


def cap_reached(rules: Rules, sends: dict[str, str], now: datetime) -> bool:
    """At most `count` announcements in the trailing `days`; this announcement's other
    channels don't count twice."""
    assert rules.cap is not None
    count, days = rules.cap
    if rules.announcement_id in sends:
        return False
    since = now - timedelta(days=days)
    recent = sum(1 for at in sends.values() if _parse(at) is not None and _parse(at) > since)  # type: ignore[operator]
    return recent >= count


def stale_sends(sends: dict[str, str], cap: tuple[int, int] | None, now: datetime) -> tuple[str, ...]:
    """Entries older than the cap window: removed with the next claim to keep the item small."""
    days = cap[1] if cap else 0
    since = now - timedelta(days=days)
    return tuple(a for a, at in sends.items() if (_parse(at) or since) <= since)


def zone_of(name: Any, default: str) -> ZoneInfo:
    for candidate in (name, default, "UTC"):
        if isinstance(candidate, str) and candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a path
                continue
    return ZoneInfo("UTC")


def quiet_until(quiet_hours: tuple[str, str], zone: ZoneInfo, now: datetime) -> datetime | None:
    """When the quiet hours the recipient is in now end (UTC), or None if they're not in them."""
    start, end = (_hhmm(v) for v in quiet_hours)
    local = now.astimezone(zone)
    current = local.time().replace(second=0, microsecond=0, tzinfo=None)
    inside = start <= current < end if start < end else current >= start or current < end
    if not inside:
        return None
    end_day = local.date() if current < end else local.date() + timedelta(days=1)
    return datetime.combine(end_day, end, tzinfo=zone).astimezone(now.tzinfo)


def _hhmm(value: str) -> time:
    hours, _, minutes = value.partition(":")
    return time(int(hours), int(minutes))


def _parse(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
