"""rule_eval_trait and rule_eval_behaviour: compiled rules over 20,000 synthetic profiles.

Peers run the same trait rule in the same process: GrowthBook's `evalCondition`,
flagsmith-flag-engine's `is_context_in_segment`, PostHog's `match_property`, and a
hand-written Python expression. Match counts are reported so a faster evaluator that
gives other answers is caught.
"""

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.results import Figure
from cohortcast.clock import epoch_day
from cohortcast.profiles.behaviour import epoch_hour
from cohortcast.profiles.model import ProfileView
from cohortcast.segments.engine import compile_rule
from cohortcast.segments.rules import parse_rule
from cohortcast.segments.templates import instantiate

PROFILES = 20_000
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TRAIT_RULE = {
    "all": [
        {"trait": "plan", "op": "in", "value": ["pro", "enterprise"]},
        {"trait": "company.size", "op": "gte", "value": 200},
        {"trait": "country", "op": "eq", "value": "DE"},
    ]
}
BEHAVIOUR_RULE = {
    "all": [
        {"event": "login", "count": {"gte": 3}, "within": "7d"},
        {"event": "report_viewed", "count": {"gte": 1}, "within": "30d"},
        {"last_seen": {"within_last": "14d"}},
    ]
}
FEATURES = [f"feature.{name}" for name in ("export", "share", "filter", "alerts", "api", "sso", "embed")]


def synthetic_profiles(count: int, seed: int = 11) -> list[ProfileView]:
    rng = random.Random(seed)
    today, now_hour = epoch_day(NOW), epoch_hour(NOW)
    profiles = []
    for i in range(count):
        traits: dict[str, Any] = {
            "plan": rng.choice(["free", "free", "pro", "enterprise", "team"]),
            "country": rng.choice(["DE", "US", "FR", "DE", "GB"]),
        }
        if rng.random() < 0.9:
            traits["company"] = {"size": rng.randint(1, 1000)}
        hourly: dict[str, dict[int, int]] = {}
        activity = rng.random()
        for day in range(today - 45, today + 1):
            # Events land in hour buckets during the (UTC) working day, none after NOW.
            hour = min(day * 24 + rng.randint(7, 20), now_hour)
            if rng.random() < activity * 0.6:
                hourly.setdefault("login", {})[hour] = rng.randint(1, 3)
            if rng.random() < activity * 0.2:
                hourly.setdefault("report_viewed", {})[hour] = 1
            for feature in FEATURES:
                if rng.random() < activity * 0.1:
                    hourly.setdefault(feature, {})[hour] = 1
        seen_hours = sorted({h for hours in hourly.values() for h in hours})
        last = datetime.fromtimestamp(seen_hours[-1] * 3600 + 1800, UTC) if seen_hours else None
        profiles.append(
            ProfileView(
                user_id=f"u{i}",
                traits=traits,
                first_seen=NOW - timedelta(days=rng.randint(1, 400)),
                last_seen=last,
                hourly=hourly,
            )
        )
    return profiles


def _rate(evaluate: Callable[[Any], bool], items: list[Any], repeats: int = 3) -> tuple[float, int]:
    """Best-of-N evaluations per second, and the number of matches."""
    best = 0.0
    matches = 0
    for _ in range(repeats):
        start = time.perf_counter()
        matches = sum(1 for item in items if evaluate(item))
        best = max(best, len(items) / (time.perf_counter() - start))
    return best, matches


def _flat(traits: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in traits.items() if not isinstance(v, dict)}
    flat.update({f"{k}.{sub}": v for k, d in traits.items() if isinstance(d, dict) for sub, v in d.items()})
    return flat


def _hand_written(traits: dict[str, Any]) -> bool:
    size = (traits.get("company") or {}).get("size")
    return (
        traits.get("plan") in ("pro", "enterprise")
        and isinstance(size, int | float)
        and size >= 200
        and traits.get("country") == "DE"
    )


def _peers() -> dict[str, tuple[Callable[[Any], bool], Callable[[ProfileView], Any]]]:
    """name → (evaluate prepared input, prepare a profile for it)."""
    peers: dict[str, tuple[Callable[[Any], bool], Callable[[ProfileView], Any]]] = {}
    try:
        from growthbook.core import evalCondition

        condition = {"plan": {"$in": ["pro", "enterprise"]}, "company.size": {"$gte": 200}, "country": "DE"}
        peers["growthbook"] = (lambda attrs: evalCondition(attrs, condition), lambda p: p.traits)
    except ImportError:
        pass
    try:
        from flag_engine.segments.evaluator import is_context_in_segment

        segment = {
            "key": "1",
            "name": "bench",
            "rules": [
                {
                    "type": "ALL",
                    "conditions": [
                        {"property": "plan", "operator": "IN", "value": "pro,enterprise"},
                        {"property": "company.size", "operator": "GREATER_THAN_INCLUSIVE", "value": "200"},
                        {"property": "country", "operator": "EQUAL", "value": "DE"},
                    ],
                }
            ],
        }

        def flagsmith_context(p: ProfileView) -> dict[str, Any]:
            return {
                "environment": {"key": "bench", "name": "bench"},
                "identity": {"identifier": p.profile_id, "key": p.profile_id, "traits": _flat(p.traits)},
            }

        peers["flagsmith"] = (lambda ctx: is_context_in_segment(ctx, segment), flagsmith_context)
    except ImportError:
        pass
    try:
        from posthog.feature_flags import match_property

        conditions = [
            {"key": "plan", "operator": "exact", "value": ["pro", "enterprise"]},
            {"key": "company.size", "operator": "gte", "value": 200},
            {"key": "country", "operator": "exact", "value": "DE"},
        ]

        def posthog(props: dict[str, Any]) -> bool:
            try:
                return all(match_property(c, props) for c in conditions)
            except Exception:  # PostHog raises when a property is missing: no match
                return False

        peers["posthog"] = (posthog, lambda p: _flat(p.traits))
    except ImportError:
        pass
    return peers


def run() -> list[Figure]:
    profiles = synthetic_profiles(PROFILES)
    trait_rule = compile_rule(parse_rule(TRAIT_RULE), segment_rule=lambda _: None)
    ours, our_matches = _rate(lambda p: trait_rule.matches(p, NOW), profiles)
    hand, hand_matches = _rate(lambda p: _hand_written(p.traits), profiles)
    peer_rates = {}
    for name, (evaluate, prepare) in _peers().items():
        prepared = [prepare(p) for p in profiles]
        peer_rates[name] = _rate(evaluate, prepared)
    fastest_peer = max((rate for rate, _ in peer_rates.values()), default=float("nan"))
    trait_detail = {
        "evals_per_s": ours,
        "matches": our_matches,
        "hand_written": {"evals_per_s": hand, "matches": hand_matches},
        **{name: {"evals_per_s": rate, "matches": matches} for name, (rate, matches) in peer_rates.items()},
    }

    behaviour_rule = compile_rule(parse_rule(BEHAVIOUR_RULE), segment_rule=lambda _: None)
    behaviour, behaviour_matches = _rate(lambda p: behaviour_rule.matches(p, NOW), profiles)
    _, _, power_rule = instantiate("power_users", {})
    power = compile_rule(power_rule, segment_rule=lambda _: None)
    power_rate, power_matches = _rate(lambda p: power.matches(p, NOW), profiles)

    return [
        Figure("rule_eval_trait", ours, "evals/s", "report", None, trait_detail),
        Figure(
            "rule_eval_trait_vs_fastest_peer", ours / fastest_peer, "×", ">= 10", ours / fastest_peer >= 10
        ),
        Figure("rule_eval_trait_vs_hand_written", ours / hand, "×", ">= 0.333", ours / hand >= 1 / 3),
        Figure(
            "rule_eval_behaviour",
            behaviour,
            "evals/s",
            ">= 1,000,000",
            behaviour >= 1_000_000,
            {"matches": behaviour_matches},
        ),
        Figure(
            "rule_eval_behaviour[power_users]",
            power_rate,
            "evals/s",
            "report",
            None,
            {"matches": power_matches},
        ),
    ]
