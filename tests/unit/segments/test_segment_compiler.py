"""Evaluation, explain, next flip and counters of compiled rules, with the clock fixed at NOW."""

from datetime import UTC, datetime, timedelta

import pytest
from segment_builders import NOW, compiled, days_ago, matches, user

from cohortcast.errors import Unprocessable
from cohortcast.segments.engine import counter_id, trend_change
from cohortcast.segments.rules import parse_rule

TRAITS = {
    "plan": "pro",
    "seats": 12,
    "ratio": 0.5,
    "beta": True,
    "tags": ["admin", "eu"],
    "email": "ada@example.com",
    "company": {"size": 250, "name": "Acme"},
    "signed_up_at": "2026-11-20T08:00:00Z",
    "trial_ends_at": 1796169600000,  # epoch milliseconds: 2026-12-02
    "nothing": None,
}


@pytest.mark.parametrize(
    ("trait", "op", "value", "expected"),
    [
        ("plan", "eq", "pro", True),
        ("plan", "eq", "Pro", False),
        ("seats", "eq", 12, True),
        ("seats", "eq", "12", False),
        ("beta", "eq", True, True),
        ("beta", "eq", 1, False),
        ("plan", "ne", "free", True),
        ("missing", "ne", "free", True),
        ("seats", "lt", 13, True),
        ("seats", "lte", 12, True),
        ("seats", "gt", 12, False),
        ("ratio", "gte", 0.5, True),
        ("plan", "gt", 1, False),
        ("beta", "gte", 0, False),
        ("company.size", "gte", 200, True),
        ("company.name.first", "exists", None, False),
        ("plan", "in", ["pro", "enterprise"], True),
        ("seats", "in", ["12", 13], False),
        ("seats", "in", [12.0], True),
        ("tags", "in", ["admin"], False),
        ("plan", "not_in", ["free"], True),
        ("missing", "not_in", ["free"], True),
        ("email", "contains", "@example", True),
        ("tags", "contains", "eu", True),
        ("tags", "not_contains", "us", True),
        ("seats", "contains", "1", False),
        ("email", "starts_with", "ada", True),
        ("email", "ends_with", ".com", True),
        ("seats", "starts_with", "1", False),
        ("email", "exists", None, True),
        ("nothing", "exists", None, False),
        ("missing", "not_exists", None, True),
        ("signed_up_at", "after", "2026-11-19", True),
        ("signed_up_at", "after", "2026-11-20", False),
        ("signed_up_at", "after", "2026-11-20T07:59:59Z", True),
        ("signed_up_at", "before", "2026-11-21", True),
        ("signed_up_at", "between", ["2026-11-20", "2026-11-20"], True),
        ("signed_up_at", "between", ["2026-11-01", "2026-11-20T08:00:00Z"], True),
        ("signed_up_at", "within_last", "7d", True),
        ("signed_up_at", "more_than_ago", "3d", True),
        ("signed_up_at", "more_than_ago", "4d", False),
        ("trial_ends_at", "after", "2026-12-01", True),
        ("trial_ends_at", "within_last", "30d", False),
        ("plan", "before", "2026-01-01", False),
        ("company", "within_last", "7d", False),
    ],
)
def test_trait_operator(trait, op, value, expected):
    node = {"trait": trait, "op": op} | ({} if value is None else {"value": value})
    assert matches(node, user(traits=TRAITS)) is expected


def test_date_trait_exactly_seven_days_ago_is_within_the_last_seven_days():
    exactly = {"at": (NOW - timedelta(days=7)).isoformat()}
    assert matches({"trait": "at", "op": "within_last", "value": "7d"}, user(traits=exactly))
    assert not matches({"trait": "at", "op": "more_than_ago", "value": "7d"}, user(traits=exactly))


def test_timestamps_in_other_timezones_compare_as_instants():
    berlin = {"at": "2026-11-23T12:30:00+01:00"}  # 11:30Z, before NOW
    assert matches({"trait": "at", "op": "within_last", "value": "1h"}, user(traits=berlin))


def test_login_count_equal_to_the_threshold_matches():
    rule = {"event": "login", "count": {"gte": 3}, "within": "7d"}
    assert matches(rule, user(events={"login": {0: 1, 3: 2}}))
    assert not matches(rule, user(events={"login": {0: 1, 3: 1}}))


def test_event_window_covers_every_day_bucket_overlapping_it():
    # 7d before 2026-11-23T12:00 is 2026-11-16T12:00, so the bucket of 2026-11-16 counts; the 15th does not.
    rule = {"event": "login", "count": {"gte": 1}, "within": "7d"}
    assert matches(rule, user(events={"login": {7: 1}}))
    assert not matches(rule, user(events={"login": {8: 1}}))


def test_buckets_dated_after_today_count_as_today():
    assert matches({"event": "login", "count": {"gte": 1}, "within": "1d"}, user(events={"login": {-1: 1}}))


@pytest.mark.parametrize(
    ("op", "number", "expected"),
    [
        ("eq", 3, True),
        ("ne", 3, False),
        ("lt", 3, False),
        ("lte", 3, True),
        ("gt", 2, True),
        ("gte", 4, False),
    ],
)
def test_count_comparisons(op, number, expected):
    rule = {"event": "login", "count": {op: number}, "within": "7d"}
    assert matches(rule, user(events={"login": {1: 2, 2: 1, 20: 5}})) is expected


def test_user_with_no_login_in_the_window_did_not_perform_it():
    rule = {"event": "login", "count": {"eq": 0}, "within": "14d"}
    assert matches(rule, user(events={"login": {15: 3}}))
    assert not matches(rule, user(events={"login": {14: 1}}))


def test_new_user_is_not_counted_as_having_stopped_logging_in():
    rule = {"event": "login", "count": {"eq": 0}, "within": "14d"}
    assert not matches(rule, user(tenure_days=3))
    assert matches(rule | {"require_full_window": False}, user(tenure_days=3))


def test_user_with_unknown_tenure_is_not_counted_as_absent():
    assert not matches({"event": "login", "count": {"lt": 1}, "within": "14d"}, user(tenure_days=None))


def test_absence_written_with_not_is_guarded_too():
    rule = {"not": {"event": "login", "count": {"gte": 1}, "within": "14d"}}
    assert not matches(rule, user(tenure_days=3))
    assert matches(rule, user(tenure_days=30))


def test_presence_conditions_do_not_wait_for_a_full_window():
    assert matches(
        {"event": "login", "count": {"gte": 1}, "within": "30d"},
        user(tenure_days=1, events={"login": {0: 1}}),
    )


def test_explicit_full_window_holds_back_new_users_on_presence_too():
    rule = {"event": "login", "count": {"gte": 1}, "within": "30d", "require_full_window": True}
    assert not matches(rule, user(tenure_days=1, events={"login": {0: 1}}))


def test_filtered_event_counts_read_their_counter():
    where = {"property": "feature", "op": "eq", "value": "api"}
    rule = {"event": "used", "where": where, "count": {"gte": 2}, "within": "30d"}
    key = compiled(rule).counter_specs()[0].counter_id
    assert matches(rule, user(events={"used": {1: 5}}, counters={key: {1: 1, 29: 1}}))
    assert not matches(rule, user(events={"used": {1: 5}}, counters={key: {1: 1}}))


def test_counter_specs_are_stable_and_match_properties():
    where = {
        "all": [
            {"property": "feature", "op": "eq", "value": "api"},
            {"property": "ms", "op": "lt", "value": 100},
        ]
    }
    rule = {
        "any": [
            {"event": "used", "where": where, "count": {"gte": 1}, "within": "7d"},
            {"event": "used", "where": where, "trend": {"window": "7d", "change_gte": 1}},
        ]
    }
    (spec,) = compiled(rule).counter_specs()
    assert spec.counter_id == counter_id("used", parse_rule(rule).root.nodes[0].where)
    assert spec.counter_id == compiled(rule).counter_specs()[0].counter_id
    assert spec.event == "used"
    assert spec.matches_properties({"feature": "api", "ms": 20})
    assert not spec.matches_properties({"feature": "api", "ms": "fast"})
    assert not spec.matches_properties({})


def test_last_seen_and_first_seen():
    assert matches({"last_seen": {"within_last": "7d"}}, user(seen_days_ago=7))
    assert not matches({"last_seen": {"within_last": "7d"}}, user(seen_days_ago=7.001))
    assert matches({"last_seen": {"more_than_ago": "14d"}}, user(seen_days_ago=15))
    assert not matches({"last_seen": {"more_than_ago": "14d"}}, user(seen_days_ago=None))
    assert matches({"first_seen": {"within_last": "7d"}}, user(tenure_days=2))
    assert matches({"first_seen": {"between": ["2026-11-01", "2026-11-30"]}}, user(tenure_days=2))
    assert matches({"first_seen": {"before": "2026-11-01"}}, user(tenure_days=60))
    assert not matches({"first_seen": {"after": "2026-11-21"}}, user(tenure_days=2))


def test_not_seen_recently_waits_for_the_window_under_not():
    rule = {"not": {"last_seen": {"within_last": "7d"}}}
    assert not matches(rule, user(tenure_days=3, seen_days_ago=None))
    assert matches(rule, user(tenure_days=30, seen_days_ago=10))


def test_active_days_counts_days_with_any_event():
    rule = {"active_days": {"gte": 3}, "within": "7d"}
    assert matches(rule, user(events={"login": {0: 1, 1: 1}, "$page": {1: 4, 6: 1}}))
    assert not matches(rule, user(events={"login": {0: 1, 1: 1}, "$page": {1: 4, 9: 1}}))


def test_distinct_events_counts_names_with_the_prefix():
    rule = {"distinct_events": {"gte": 2}, "within": "7d", "prefix": "feature."}
    assert matches(rule, user(events={"feature.a": {1: 1}, "feature.b": {2: 1}, "login": {0: 1}}))
    assert not matches(rule, user(events={"feature.a": {1: 1}, "feature.b": {20: 1}, "login": {0: 1}}))


def test_trend_compares_two_equal_windows():
    rule = {"event": "login", "trend": {"window": "7d", "change_lte": -0.5}}
    assert matches(rule, user(events={"login": {0: 1, 7: 2}}))  # 1 now vs 2 before: -50%
    assert not matches(rule, user(events={"login": {0: 2, 7: 3}}))
    assert not matches(rule, user(tenure_days=10, events={"login": {0: 1, 7: 2}}))


def test_trend_from_zero_is_growth_and_zero_to_zero_is_no_change():
    assert trend_change(3, 0) == float("inf")
    assert trend_change(0, 0) == 0
    assert matches(
        {"event": "login", "trend": {"window": "7d", "change_gte": 1}}, user(events={"login": {0: 1}})
    )


def test_static_segment_membership_is_read_from_the_profile():
    assert matches({"segment": "vip"}, user(segments=frozenset({"vip"})))
    assert not matches({"segment": "vip"}, user())


def test_dynamic_segment_is_evaluated_inline():
    rule = compiled({"not": {"segment": "active"}}, {"active": {"last_seen": {"within_last": "7d"}}})
    assert rule.matches(user(seen_days_ago=10), NOW)
    assert not rule.matches(user(seen_days_ago=1), NOW)
    assert rule.is_time_dependent


def test_segment_loop_is_refused_at_compile_time():
    with pytest.raises(Unprocessable, match="a -> b -> a"):
        compiled({"segment": "a"}, {"a": {"segment": "b"}, "b": {"segment": "a"}})


def test_wrong_types_in_the_profile_are_false_not_errors():
    odd = user(traits={"company": "Acme", "plan": ["pro"], "size": {"n": 1}, "at": "not a date"})
    for node in (
        {"trait": "company.size", "op": "gte", "value": 1},
        {"trait": "plan", "op": "eq", "value": "pro"},
        {"trait": "size", "op": "in", "value": [1]},
        {"trait": "at", "op": "before", "value": "2030-01-01"},
        {"trait": "at", "op": "within_last", "value": "7d"},
    ):
        assert not matches(node, odd)


def test_trait_only_rules_are_not_time_dependent():
    assert not compiled({"trait": "plan", "op": "eq", "value": "pro"}).is_time_dependent
    assert compiled({"trait": "at", "op": "within_last", "value": "7d"}).is_time_dependent


def test_explain_shows_values_counts_and_windows():
    rule = {
        "all": [
            {"trait": "plan", "op": "eq", "value": "pro"},
            {"event": "login", "count": {"gte": 3}, "within": "7d"},
        ]
    }
    explained = compiled(rule).explain(user(traits={"plan": "pro"}, events={"login": {1: 2}}), NOW)
    assert explained["node"] == rule
    assert explained["value"] is False
    trait, login = explained["children"]
    assert trait["value"] is True and trait["detail"]["actual"] == "pro"
    assert (
        login["value"] is False
        and login["detail"]["count"] == 2
        and login["detail"]["from_hour"] == "2026-11-16T12:00:00Z"
    )


def test_explain_flags_a_user_too_new_for_the_window():
    rule = {"event": "login", "count": {"eq": 0}, "within": "14d", "require_full_window": False}
    explained = compiled(rule).explain(user(tenure_days=3), NOW)
    assert explained["value"] is True and explained["too_new"] is True
    assert explained["detail"]["require_full_window"] is False


def test_user_leaves_at_risk_after_login():
    at_risk = compiled({"event": "login", "count": {"eq": 0}, "within": "14d"})
    assert at_risk.matches(user(events={"login": {20: 1}}), NOW)
    assert not at_risk.matches(user(events={"login": {20: 1, 0: 1}}), NOW)


def test_next_flip_is_when_the_last_login_leaves_the_window():
    at_risk = compiled({"event": "login", "count": {"eq": 0}, "within": "14d"})
    profile = user(events={"login": {3: 1, 10: 1}})
    flip = at_risk.next_flip(profile, NOW)
    # the 11-20T12 hour bucket leaves when now - 14d reaches 11-20T13:00
    assert flip == datetime(2026, 12, 4, 13, tzinfo=UTC)
    assert not at_risk.matches(profile, flip - timedelta(microseconds=1))
    assert at_risk.matches(profile, flip)


def test_next_flip_of_a_new_user_is_when_their_tenure_covers_the_window():
    at_risk = compiled({"event": "login", "count": {"eq": 0}, "within": "14d"})
    assert at_risk.next_flip(user(tenure_days=3), NOW) == days_ago(3) + timedelta(days=14)


def test_next_flip_is_none_when_time_cannot_change_the_answer():
    assert compiled({"trait": "plan", "op": "eq", "value": "pro"}).next_flip(user(), NOW) is None
    gated = compiled(
        {"all": [{"trait": "plan", "op": "eq", "value": "pro"}, {"last_seen": {"within_last": "7d"}}]}
    )
    assert gated.next_flip(user(traits={"plan": "free"}), NOW) is None
    assert compiled({"event": "login", "count": {"gte": 1}, "within": "7d"}).next_flip(user(), NOW) is None


def test_next_flip_of_recently_seen_is_just_after_the_window_ends():
    flip = compiled({"last_seen": {"within_last": "7d"}}).next_flip(user(seen_days_ago=1), NOW)
    assert flip == days_ago(1) + timedelta(days=7, microseconds=1)
