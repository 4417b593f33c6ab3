"""Rule validation: what is accepted, what is rejected and where the error points."""

from datetime import timedelta

import pytest

from cohortcast.errors import Unprocessable
from cohortcast.segments.durations import parse_duration
from cohortcast.segments.rules import find_cycle, parse_rule, referenced_segments


def pointers(raw, **kwargs) -> list[str]:
    with pytest.raises(Unprocessable) as caught:
        parse_rule(raw, **kwargs)
    assert caught.value.message.startswith(f"invalid rule at '{caught.value.details[0]['pointer']}'")
    return [detail["pointer"] for detail in caught.value.details]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("12h", timedelta(hours=12)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("P7D", timedelta(days=7)),
        ("PT12H", timedelta(hours=12)),
        ("P2W", timedelta(weeks=2)),
        ("P1DT6H", timedelta(days=1, hours=6)),
    ],
)
def test_durations_accept_short_and_iso_forms(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "7x", "0d", "P", "PT", "P1M", "P1Y", "-7d", "7 d", "P1DT", 7])
def test_durations_reject_anything_else(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_every_spec_node_kind_is_accepted():
    rule = {
        "all": [
            {"trait": "plan", "op": "in", "value": ["pro", "enterprise"]},
            {"trait": "company.size", "op": "gte", "value": 200},
            {"trait": "email", "op": "exists"},
            {"trait": "signed_up_at", "op": "between", "value": ["2026-01-01", "2026-02-01T00:00:00Z"]},
            {"event": "login", "count": {"gte": 3}, "within": "7d"},
            {
                "event": "f",
                "where": {"any": [{"property": "x", "op": "eq", "value": 1}]},
                "count": {"eq": 0},
                "within": "P30D",
                "require_full_window": False,
            },
            {"any": [{"last_seen": {"within_last": "7d"}}, {"first_seen": {"before": "2026-01-01"}}]},
            {"not": {"active_days": {"gte": 5}, "within": "7d"}},
            {"distinct_events": {"gte": 5}, "within": "7d", "prefix": "feature."},
            {"event": "login", "trend": {"window": "30d", "change_lte": -0.5}},
            {"segment": "seg_1"},
        ]
    }
    assert parse_rule(rule).as_json() == rule


def test_error_points_at_a_count_given_as_a_string():
    rule = {
        "all": [
            {"trait": "plan", "op": "eq", "value": "pro"},
            {"event": "login", "count": {"gte": "3"}, "within": "7d"},
        ]
    }
    assert pointers(rule) == ["/all/1/count/gte"]


@pytest.mark.parametrize(
    ("rule", "pointer"),
    [
        ({"trait": "plan", "op": "in", "value": "pro"}, "/value"),
        ({"trait": "plan", "op": "like", "value": "pro"}, "/op"),
        ({"trait": "plan", "op": "eq"}, "/value"),
        ({"trait": "plan", "op": "exists", "value": 1}, "/value"),
        ({"trait": "size", "op": "gte", "value": "200"}, "/value"),
        ({"trait": "size", "op": "gte", "value": True}, "/value"),
        ({"trait": "d", "op": "before", "value": "yesterday"}, "/value"),
        ({"trait": "d", "op": "within_last", "value": "7 days"}, "/value"),
        ({"trait": "d", "op": "between", "value": ["2026-02-01", "2026-01-01"]}, "/value"),
        ({"trait": "a..b", "op": "exists"}, "/trait"),
        ({"trait": "plan", "op": "eq", "value": "pro", "extra": 1}, "/extra"),
        ({"event": "login", "count": {"gte": 1}}, "/within"),
        ({"event": "login", "count": {"gte": 1, "lte": 3}, "within": "7d"}, "/count"),
        ({"event": "login", "count": {"most": 1}, "within": "7d"}, "/count/most"),
        ({"event": "login", "count": {"gte": -1}, "within": "7d"}, "/count/gte"),
        ({"event": "login", "count": {"gte": 1}, "within": "91d"}, "/within"),
        (
            {"event": "login", "count": {"gte": 1}, "within": "7d", "require_full_window": "yes"},
            "/require_full_window",
        ),
        (
            {
                "event": "e",
                "where": {"property": "t", "op": "within_last", "value": "1d"},
                "count": {"eq": 0},
                "within": "1d",
            },
            "/where/op",
        ),
        (
            {"event": "e", "where": {"trait": "t", "op": "exists"}, "count": {"eq": 0}, "within": "1d"},
            "/where",
        ),
        ({"event": "login", "trend": {"window": "50d", "change_lte": -0.5}}, "/trend/window"),
        ({"event": "login", "trend": {"window": "36h", "change_lte": -0.5}}, "/trend/window"),
        ({"event": "login", "trend": {"window": "7d"}}, "/trend"),
        ({"last_seen": {"within_last": "7d", "before": "2026-01-01"}}, "/last_seen"),
        ({"last_seen": {"within": "7d"}}, "/last_seen/within"),
        ({"first_seen": {"before": "2026-01-01"}, "require_full_window": True}, "/require_full_window"),
        ({"any": []}, "/any"),
        ({"any": [{"segment": ""}]}, "/any/0/segment"),
        ({"all": [{"nonsense": 1}]}, "/all/0"),
        ({"all": ["login"]}, "/all/0"),
        ([], ""),
    ],
)
def test_invalid_rules_are_rejected_with_a_pointer_to_the_node(rule, pointer):
    assert pointer in pointers(rule)


def test_every_problem_is_reported_not_only_the_first():
    rule = {"any": [{"trait": "a", "op": "gt", "value": "x"}, {"last_seen": {"within_last": "soon"}}]}
    assert pointers(rule) == ["/any/0/value", "/any/1/last_seen/within_last"]


def test_window_limit_follows_the_retention_passed_in():
    rule = {"event": "login", "count": {"gte": 1}, "within": "120d"}
    assert pointers(rule) == ["/within"]
    assert parse_rule(rule, max_window_days=180)


def test_trend_needs_retention_for_both_windows():
    rule = {"event": "login", "trend": {"window": "30d", "change_lte": -0.5}}
    assert pointers(rule, max_window_days=45) == ["/trend/window"]


def test_rules_deeper_than_eight_levels_are_rejected():
    rule: dict = {"segment": "s"}
    for _ in range(8):
        rule = {"not": rule}
    assert pointers(rule) == ["/not/not/not/not/not/not/not/not"]


def test_rules_with_more_than_two_hundred_nodes_are_rejected():
    rule = {"any": [{"segment": f"s{i}"} for i in range(200)]}
    assert pointers(rule) == [""]


def test_long_lists_and_strings_are_rejected():
    assert pointers({"trait": "t", "op": "in", "value": ["x"] * 501}) == ["/value"]
    assert pointers({"trait": "t", "op": "eq", "value": "x" * 513}) == ["/value"]


def test_pointer_escapes_slash_and_tilde_in_keys():
    assert pointers({"trait": "t", "op": "exists", "a/b~": 1}) == ["/a~1b~0"]


def test_referenced_segments_are_found_at_any_depth():
    rule = parse_rule(
        {"all": [{"segment": "a"}, {"not": {"any": [{"segment": "b"}, {"trait": "x", "op": "exists"}]}}]}
    )
    assert referenced_segments(rule) == {"a", "b"}


def test_saving_a_rule_that_closes_a_loop_reports_the_cycle():
    stored = {
        "b": parse_rule({"segment": "c"}),
        "c": parse_rule({"any": [{"segment": "a"}, {"segment": "z"}]}),
    }
    assert find_cycle("a", parse_rule({"segment": "b"}), stored.get) == ["a", "b", "c", "a"]


def test_self_reference_is_a_cycle():
    assert find_cycle("a", parse_rule({"not": {"segment": "a"}}), lambda _: None) == ["a", "a"]


def test_static_segments_and_unrelated_loops_are_not_cycles():
    stored = {"b": parse_rule({"segment": "c"}), "c": parse_rule({"segment": "b"})}
    assert find_cycle("a", parse_rule({"all": [{"segment": "b"}, {"segment": "static"}]}), stored.get) is None
