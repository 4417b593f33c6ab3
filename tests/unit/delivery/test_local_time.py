"""`local_time` announcements: each recipient at that time in their own zone."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cohortcast.delivery import policy

PLANNED = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # noon UTC on a Monday


def rules(**overrides) -> policy.Rules:
    values = {
        "announcement_id": "ann_1",
        "topic": None,
        "critical": False,
        "cancelled": False,
        "cap": None,
        "quiet_hours": None,
        "default_timezone": "Europe/Berlin",
        "first_planned_at": PLANNED,
        "local_time": "09:00",
    }
    return policy.Rules(**{**values, **overrides})


def audience(timezone: str | None) -> policy.Audience:
    return policy.Audience(
        address="a@example.com",
        suppressed=False,
        unsubscribed_all=False,
        topics_off=frozenset(),
        sends={},
        timezone=timezone,
    )


@pytest.mark.parametrize(
    ("timezone", "expected"),
    [
        ("America/New_York", datetime(2026, 11, 23, 14, 0, tzinfo=UTC)),  # 07:00 there: today
        ("America/Los_Angeles", datetime(2026, 11, 23, 17, 0, tzinfo=UTC)),  # 04:00 there: today
        ("Asia/Tokyo", datetime(2026, 11, 24, 0, 0, tzinfo=UTC)),  # 21:00 there: tomorrow 09:00
        (None, datetime(2026, 11, 24, 8, 0, tzinfo=UTC)),  # default Berlin, 13:00 there: tomorrow
        ("Not/AZone", datetime(2026, 11, 24, 8, 0, tzinfo=UTC)),  # invalid trait: the default
    ],
)
def test_each_recipient_waits_for_the_next_nine_oclock_in_their_zone(timezone, expected):
    decision = policy.decide(rules(), audience(timezone), PLANNED)
    assert (decision.action, decision.reason, decision.until) == (policy.DEFER, "local_time", expected)


def test_when_the_local_time_comes_the_recipient_is_sent_to():
    due = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
    assert policy.decide(rules(), audience("America/Los_Angeles"), due).action == policy.SEND
    # a resume that runs late still sends (the moment was computed from when it was planned)
    assert policy.decide(rules(), audience("America/Los_Angeles"), due + timedelta(hours=3)).action == "send"


def test_opt_outs_skip_at_once_and_critical_still_waits_for_the_local_time():
    unsubscribed = policy.Audience(
        address="a@example.com",
        suppressed=False,
        unsubscribed_all=True,
        topics_off=frozenset(),
        sends={},
        timezone="Asia/Tokyo",
    )
    assert policy.decide(rules(), unsubscribed, PLANNED).reason == "unsubscribed"
    assert policy.decide(rules(critical=True), audience("Asia/Tokyo"), PLANNED).reason == "local_time"


def test_quiet_hours_are_measured_from_the_local_send_time():
    # 07:00 local is inside 21:00-08:00: wait one more hour, not a skip for waiting > 24 h
    late = rules(local_time="07:00", quiet_hours=("21:00", "08:00"))
    at_seven = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)  # 07:00 on the 24th in Tokyo
    decision = policy.decide(late, audience("Asia/Tokyo"), at_seven)
    assert (decision.action, decision.until) == (policy.DEFER, datetime(2026, 11, 23, 23, 0, tzinfo=UTC))


def test_local_send_time_is_today_until_the_minute_passes_and_follows_dst():
    berlin = ZoneInfo("Europe/Berlin")
    nine = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert policy.local_send_time("09:00", berlin, nine) == nine
    assert policy.local_send_time("09:00", berlin, nine + timedelta(seconds=1)) == nine + timedelta(days=1)
    # the night the clocks go back (25 Oct 2026): 09:00 CET is 08:00 UTC, the day before CEST 07:00
    assert policy.local_send_time("09:00", berlin, datetime(2026, 10, 24, 12, 0, tzinfo=UTC)) == datetime(
        2026, 10, 25, 8, 0, tzinfo=UTC
    )
