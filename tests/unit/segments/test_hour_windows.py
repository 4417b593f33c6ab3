"""Event windows are exact to the hour: behaviour is counted in UTC hour buckets."""

import json
import zlib
from datetime import UTC, datetime, timedelta

import pytest
from segment_builders import NOW, compiled, user

from cohortcast.errors import Unprocessable
from cohortcast.profiles.behaviour import epoch_hour
from cohortcast.segments.rules import parse_rule
from cohortcast.storage.profiles import decode_behaviour


def logged_in_at(*moments: datetime, **kwargs):
    profile = user(**kwargs)
    profile.hourly = {"login": {}}
    for moment in moments:
        hour = epoch_hour(moment)
        profile.hourly["login"][hour] = profile.hourly["login"].get(hour, 0) + 1
    return profile


def test_login_14_days_and_5_minutes_ago_is_not_within_14_days():
    within_14d = compiled({"event": "login", "count": {"gte": 1}, "within": "14d"})
    assert not within_14d.matches(logged_in_at(NOW - timedelta(days=14, minutes=5)), NOW)
    assert within_14d.matches(logged_in_at(NOW - timedelta(days=13, hours=23)), NOW)


def test_12_hour_window_counts_the_last_12_hours_not_the_whole_day():
    now = datetime(2026, 11, 23, 20, 30, tzinfo=UTC)
    recent = compiled({"event": "login", "count": {"gte": 2}, "within": "12h"})
    logins = logged_in_at(datetime(2026, 11, 23, 7, 0, tzinfo=UTC), datetime(2026, 11, 23, 18, 0, tzinfo=UTC))
    assert not recent.matches(logins, now)  # 07:00 is 13.5 hours ago
    assert recent.matches(logins, datetime(2026, 11, 23, 18, 30, tzinfo=UTC))


def test_absence_ends_and_returns_on_the_hour():
    at_risk = compiled({"event": "login", "count": {"eq": 0}, "within": "2h"})
    profile = logged_in_at(datetime(2026, 11, 23, 9, 10, tzinfo=UTC))
    assert not at_risk.matches(profile, datetime(2026, 11, 23, 10, 59, tzinfo=UTC))
    # The 09:00 bucket leaves the window when now - 2h passes 10:00, i.e. at 12:00
    assert at_risk.next_flip(profile, datetime(2026, 11, 23, 10, 59, tzinfo=UTC)) == datetime(
        2026, 11, 23, 12, tzinfo=UTC
    )
    assert at_risk.matches(profile, datetime(2026, 11, 23, 12, 0, tzinfo=UTC))


def test_active_days_counts_days_with_an_event_inside_the_window():
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    two_days = compiled({"active_days": {"gte": 2}, "within": "1d"})
    yesterday_evening, yesterday_morning = now - timedelta(hours=15), now - timedelta(hours=30)
    assert two_days.matches(logged_in_at(yesterday_evening, now), now)
    assert not two_days.matches(logged_in_at(yesterday_morning, now), now)


@pytest.mark.parametrize("window", ["30m", "90m", "PT1H30M"])
def test_event_windows_that_are_not_whole_hours_are_rejected_at_save_time(window):
    with pytest.raises(Unprocessable) as raised:
        parse_rule({"event": "login", "count": {"gte": 1}, "within": window})
    assert raised.value.details[0]["pointer"] == "/within"
    assert "whole hours" in raised.value.details[0]["message"]


def test_last_seen_keeps_minute_windows():
    seen_recently = compiled({"last_seen": {"within_last": "30m"}})
    assert seen_recently.matches(user(seen_days_ago=20 / 1440), NOW)
    assert not seen_recently.matches(user(seen_days_ago=40 / 1440), NOW)


def test_day_buckets_stored_before_hour_buckets_read_as_the_last_hour_of_their_day():
    day = 20_415  # 2025-11-22
    legacy = zlib.compress(json.dumps({"d": {"login": {str(day): 2}}, "c": {"c_x": {str(day): 1}}}).encode())
    behaviour = decode_behaviour(legacy)
    assert behaviour.hourly == {"login": {day * 24 + 23: 2}}
    assert behaviour.counters == {"c_x": {day * 24 + 23: 1}}
