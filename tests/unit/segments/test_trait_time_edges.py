"""Trait times at the edges of the calendar never break a user's evaluation."""

import pytest
from segment_builders import NOW, compiled, user


@pytest.mark.parametrize(
    ("value", "op", "matches"),
    [
        ("9999-12-31T23:59:59Z", "more_than_ago", False),
        ("9999-12-31T23:59:59Z", "within_last", False),
        ("0001-01-01T00:00:00Z", "more_than_ago", True),
        ("0001-01-01T00:00:00Z", "within_last", False),
        (2**62, "more_than_ago", False),  # epoch milliseconds past year 9999: not a time
    ],
)
def test_trait_time_at_the_ends_of_the_calendar_evaluates_and_never_flips(value, op, matches):
    rule = compiled({"trait": "signed_up_at", "op": op, "value": "7d"})
    profile = user(traits={"signed_up_at": value})
    assert rule.matches(profile, NOW) is matches
    flip = rule.next_flip(profile, NOW)
    assert flip is None or flip > NOW
