"""Each named template against hand-built users, and the params mechanism."""

import pytest
from segment_builders import NOW, user

from cohortcast.errors import Unprocessable
from cohortcast.segments.engine import compile_rule
from cohortcast.segments.templates import TEMPLATES, instantiate

FEATURES = {f"feature.{name}": {0: 1} for name in "abcde"}
DAILY_ACTIVE = {"login": {day: 1 for day in range(5)}}


def in_template(template_id: str, profile, **overrides) -> bool:
    _, _, rule = instantiate(template_id, overrides)
    return compile_rule(rule, segment_rule=lambda _: None).matches(profile, NOW)


@pytest.mark.parametrize(
    ("template_id", "member", "not_member"),
    [
        ("new_users", user(tenure_days=3), user(tenure_days=8)),
        ("active_users", user(seen_days_ago=6), user(seen_days_ago=8)),
        ("power_users", user(events=DAILY_ACTIVE | FEATURES), user(events={"login": {0: 9}} | FEATURES)),
        (
            "casual_users",
            user(events={"login": {2: 1, 9: 1}}),
            user(events={"login": {d: 1 for d in range(6)}}),
        ),
        ("at_risk", user(events={"login": {20: 1}}, seen_days_ago=20), user(events={"login": {3: 1}})),
        ("churned", user(seen_days_ago=31), user(seen_days_ago=29)),
        (
            "dormant_paying",
            user(traits={"plan": "pro"}, seen_days_ago=40),
            user(traits={"plan": "free"}, seen_days_ago=40),
        ),
        ("logins_dropped", user(events={"login": {1: 2, 40: 6}}), user(events={"login": {1: 5, 40: 6}})),
        (
            "enterprise_api_users",
            user(traits={"plan": "enterprise"}, events={"api_call": {29: 1}}),
            user(traits={"plan": "pro"}, events={"api_call": {1: 1}}),
        ),
        (
            "engaged_reporters",
            user(events={"login": {0: 1, 6: 2}, "report_viewed": {20: 1}}),
            user(events={"login": {0: 1, 6: 1}, "report_viewed": {20: 1}}),
        ),
    ],
)
def test_template_matches_its_users(template_id, member, not_member):
    assert in_template(template_id, member)
    assert not in_template(template_id, not_member)


def test_every_template_has_a_valid_default_rule():
    assert len(TEMPLATES) == 10
    for template in TEMPLATES.values():
        assert template.rule


def test_new_user_is_not_at_risk_before_knowing_them_for_the_window():
    assert not in_template("at_risk", user(tenure_days=5, seen_days_ago=5))


def test_new_user_is_not_churned_nor_logins_dropped():
    newcomer = user(tenure_days=2, seen_days_ago=2, events={"login": {2: 1}})
    assert not in_template("churned", newcomer)
    assert not in_template("logins_dropped", newcomer)


def test_overrides_change_the_numbers_and_the_description():
    name, description, rule = instantiate("at_risk", {"days": 21, "event": "session_start"})
    assert name == "At-risk users"
    assert "21 days" in description and "session_start" in description
    assert rule.as_json()["within"] == "21d"
    assert in_template("at_risk", user(events={"login": {20: 1}}), days=21) is False


def test_unknown_or_badly_typed_overrides_are_rejected():
    with pytest.raises(Unprocessable) as caught:
        instantiate("at_risk", {"dayz": 3, "event": 5, "days": 0})
    assert [d["pointer"] for d in caught.value.details] == ["/dayz", "/event", "/days"]


def test_override_beyond_retention_is_rejected_by_the_rule():
    with pytest.raises(Unprocessable, match="/within"):
        instantiate("at_risk", {"days": 120})


def test_unknown_template_is_rejected():
    with pytest.raises(Unprocessable):
        instantiate("nope", {})
