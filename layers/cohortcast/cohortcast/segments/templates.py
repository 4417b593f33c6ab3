"""Named segment templates (SPEC §4 seed examples) with a few overridable parameters.

`instantiate("at_risk", {"days": 21})` returns the name, description and validated Rule.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cohortcast.errors import Unprocessable
from cohortcast.segments.rules import DEFAULT_MAX_WINDOW_DAYS, MAX_LIST_ITEMS, MAX_STRING, Rule, parse_rule

RuleBuilder = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class SegmentTemplate:
    """`title` and `description` are format strings over `params`; `build` makes the rule JSON."""

    template_id: str
    title: str
    description: str
    params: dict[str, Any]
    build: RuleBuilder

    @property
    def rule(self) -> Rule:
        return parse_rule(self.build(self.params))


def _days(n: int) -> str:
    return f"{n}d"


_TEMPLATES = [
    SegmentTemplate(
        "new_users",
        "New users",
        "Users first seen in the last {days} days.",
        {"days": 7},
        lambda p: {"first_seen": {"within_last": _days(p["days"])}},
    ),
    SegmentTemplate(
        "active_users",
        "Active users",
        "Users seen in the last {days} days.",
        {"days": 7},
        lambda p: {"last_seen": {"within_last": _days(p["days"])}},
    ),
    SegmentTemplate(
        "power_users",
        "Power users",
        "Active on at least {active_days} of the last {days} days and used at least {features} "
        "different '{feature_prefix}' features in that time.",
        {"days": 7, "active_days": 5, "features": 5, "feature_prefix": "feature."},
        lambda p: {
            "all": [
                {"active_days": {"gte": p["active_days"]}, "within": _days(p["days"])},
                {
                    "distinct_events": {"gte": p["features"]},
                    "within": _days(p["days"]),
                    "prefix": p["feature_prefix"],
                },
            ]
        },
    ),
    SegmentTemplate(
        "casual_users",
        "Casual users",
        "Seen in the last {days} days, but active on at most {max_active_days} of them.",
        {"days": 30, "max_active_days": 4},
        lambda p: {
            "all": [
                {"last_seen": {"within_last": _days(p["days"])}},
                {"active_days": {"lte": p["max_active_days"]}, "within": _days(p["days"])},
            ]
        },
    ),
    SegmentTemplate(
        "at_risk",
        "At-risk users",
        "No '{event}' in the last {days} days, among users known for at least {days} days.",
        {"days": 14, "event": "login"},
        lambda p: {
            "event": p["event"],
            "count": {"eq": 0},
            "within": _days(p["days"]),
            "require_full_window": True,
        },
    ),
    SegmentTemplate(
        "churned",
        "Churned users",
        "Not seen for more than {days} days.",
        {"days": 30},
        lambda p: {"last_seen": {"more_than_ago": _days(p["days"])}},
    ),
    SegmentTemplate(
        "dormant_paying",
        "Dormant but paying",
        "On a paid plan ({paid_plans}) and not seen for more than {days} days.",
        {"days": 30, "paid_plans": ["pro", "enterprise"], "plan_trait": "plan"},
        lambda p: {
            "all": [
                {"trait": p["plan_trait"], "op": "in", "value": p["paid_plans"]},
                {"last_seen": {"more_than_ago": _days(p["days"])}},
            ]
        },
    ),
    SegmentTemplate(
        "logins_dropped",
        "Logins dropped",
        "'{event}' count over the last {days} days is at least {drop_percent}% below the {days} days before.",
        {"days": 30, "drop_percent": 50, "event": "login"},
        lambda p: {
            "event": p["event"],
            "trend": {"window": _days(p["days"]), "change_lte": -p["drop_percent"] / 100},
        },
    ),
    SegmentTemplate(
        "enterprise_api_users",
        "Enterprise API users",
        "{plan} plan users who sent '{event}' at least once in the last {days} days.",
        {"days": 30, "event": "api_call", "plan": "enterprise", "plan_trait": "plan"},
        lambda p: {
            "all": [
                {"trait": p["plan_trait"], "op": "eq", "value": p["plan"]},
                {"event": p["event"], "count": {"gte": 1}, "within": _days(p["days"])},
            ]
        },
    ),
    SegmentTemplate(
        "engaged_reporters",
        "Engaged reporting users",
        "Logged in at least {logins} times in the last {days} days and used reporting ('{report_event}') "
        "at least once in the last {report_days} days.",
        {"days": 7, "logins": 3, "login_event": "login", "report_event": "report_viewed", "report_days": 30},
        lambda p: {
            "all": [
                {"event": p["login_event"], "count": {"gte": p["logins"]}, "within": _days(p["days"])},
                {"event": p["report_event"], "count": {"gte": 1}, "within": _days(p["report_days"])},
            ]
        },
    ),
]
TEMPLATES: dict[str, SegmentTemplate] = {template.template_id: template for template in _TEMPLATES}


def instantiate(
    template_id: str, overrides: dict[str, Any], *, max_window_days: int = DEFAULT_MAX_WINDOW_DAYS
) -> tuple[str, str, Rule]:
    """(name, description, rule) of a template with `overrides` for its params, e.g. {"days": 14}."""
    template = TEMPLATES.get(template_id)
    if template is None:
        raise Unprocessable(
            f"unknown template {template_id!r}", [{"pointer": "/template", "message": "unknown template"}]
        )
    problems = [
        {"pointer": f"/{key}", "message": message}
        for key, value in overrides.items()
        if (message := _param_problem(template, key, value))
    ]
    if problems:
        raise Unprocessable(f"invalid template parameter at '{problems[0]['pointer']}'", problems)
    params = template.params | overrides
    rule = parse_rule(template.build(params), max_window_days=max_window_days)
    shown = {key: ", ".join(value) if isinstance(value, list) else value for key, value in params.items()}
    return template.title, template.description.format(**shown), rule


def _param_problem(template: SegmentTemplate, key: str, value: Any) -> str | None:
    """Overrides keep the type of the default; numbers are positive; the rule validates the rest."""
    if key not in template.params:
        return f"unknown parameter; this template takes {', '.join(sorted(template.params))}"
    default = template.params[key]
    if type(default) is int:
        ok = type(value) is int and 1 <= value <= 100_000
        return None if ok else "must be a positive whole number"
    if type(default) is str:
        return None if type(value) is str and 1 <= len(value) <= MAX_STRING else "must be a non-empty string"
    ok = type(value) is list and 1 <= len(value) <= MAX_LIST_ITEMS and all(type(v) is str for v in value)
    return None if ok else "must be a non-empty list of strings"
