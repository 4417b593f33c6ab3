"""Properties over random rules and profiles: the compiled rule agrees with a slow reference
interpreter written straight from docs/rules.md, explain agrees with matches, and next_flip
is never late."""

from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from segment_builders import NOW, THIS_HOUR

from cohortcast.clock import epoch_day
from cohortcast.profiles.model import ProfileView
from cohortcast.segments.durations import day_start, hour_start, moment_of, parse_bound, parse_duration
from cohortcast.segments.engine import compile_rule
from cohortcast.segments.rules import parse_rule

WHERE = {"property": "plan", "op": "eq", "value": "pro"}
COUNTER = (
    compile_rule(
        parse_rule({"event": "login", "where": WHERE, "count": {"gte": 1}, "within": "1d"}),
        segment_rule=lambda _: None,
    )
    .counter_specs()[0]
    .counter_id
)

# --- the reference interpreter -------------------------------------------------------------------


def walk(data: Any, path: str) -> Any:
    for key in path.split("."):
        data = data.get(key) if isinstance(data, dict) else None
    return data


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if isinstance(expected, str):
        return isinstance(actual, str) and actual == expected
    return is_number(actual) and actual == expected


def in_dates(op: str, value: Any, moment: datetime) -> bool:
    if op == "before":
        return moment < parse_bound(value)[0]
    if op == "after":
        bound, whole_day = parse_bound(value)
        return moment >= bound + timedelta(days=1) if whole_day else moment > bound
    (start, _), (end, whole_day) = parse_bound(value[0]), parse_bound(value[1])
    return start <= moment < end + timedelta(days=1) if whole_day else start <= moment <= end


def value_holds(op: str, value: Any, actual: Any, now: datetime) -> bool:
    if op in ("ne", "not_in", "not_contains"):
        return not value_holds(op.removeprefix("not_").replace("ne", "eq"), value, actual, now)
    if op == "eq":
        return same(actual, value)
    if op == "in":
        return any(same(actual, item) for item in value)
    if op == "contains":
        if isinstance(actual, str):
            return isinstance(value, str) and value in actual
        return isinstance(actual, list) and any(same(item, value) for item in actual)
    if op in ("lt", "lte", "gt", "gte"):
        return (
            is_number(actual)
            and {"lt": actual < value, "lte": actual <= value, "gt": actual > value, "gte": actual >= value}[
                op
            ]
        )
    if op in ("starts_with", "ends_with"):
        return isinstance(actual, str) and getattr(actual, op.replace("_", ""))(value)
    if op in ("exists", "not_exists"):
        return (actual is not None) == (op == "exists")
    moment = moment_of(actual)
    if moment is None:
        return False
    return (
        relative(op, value, moment, now)
        if op in ("within_last", "more_than_ago")
        else in_dates(op, value, moment)
    )


def relative(op: str, value: str, moment: datetime, now: datetime) -> bool:
    cutoff = now - parse_duration(value)
    return cutoff <= moment <= now if op == "within_last" else moment < cutoff


def compare(comparison: dict[str, int], n: int) -> bool:
    ((op, k),) = comparison.items()
    return {"eq": n == k, "ne": n != k, "lt": n < k, "lte": n <= k, "gt": n > k, "gte": n >= k}[op]


def is_absence(comparison: dict[str, int]) -> bool | None:
    ((op, k),) = comparison.items()
    if op in ("lt", "lte") or (op, k) == ("eq", 0):
        return True
    if op in ("gt", "gte") or (op, k) == ("ne", 0):
        return False
    return None


def guarded(node: dict, absence: bool | None, negated: bool) -> bool:
    if node.get("require_full_window") is not None:
        return node["require_full_window"]
    return absence is not None and absence != negated


def too_new(profile: ProfileView, span: timedelta, now: datetime) -> bool:
    return profile.first_seen is None or now - profile.first_seen < span


def reference(node: dict, p: ProfileView, now: datetime, negated: bool = False) -> bool:
    if "all" in node:
        return all(reference(child, p, now, negated) for child in node["all"])
    if "any" in node:
        return any(reference(child, p, now, negated) for child in node["any"])
    if "not" in node:
        return not reference(node["not"], p, now, not negated)
    if "trait" in node:
        return value_holds(node["op"], node.get("value"), walk(p.traits, node["trait"]), now)
    if "segment" in node:
        return node["segment"] in p.segments
    if "first_seen" in node or "last_seen" in node:
        return seen(node, p, now, negated)
    return behaviour(node, p, now, negated)


def seen(node: dict, p: ProfileView, now: datetime, negated: bool) -> bool:
    field = "first_seen" if "first_seen" in node else "last_seen"
    ((op, value),) = node[field].items()
    if field == "last_seen" and op in ("within_last", "more_than_ago"):
        span = parse_duration(value)
        if guarded(node, op == "more_than_ago", negated) and too_new(p, span, now):
            return negated
    moment = getattr(p, field)
    if moment is None:
        return False
    return (
        relative(op, value, moment, now)
        if op in ("within_last", "more_than_ago")
        else in_dates(op, value, moment)
    )


def behaviour(node: dict, p: ProfileView, now: datetime, negated: bool) -> bool:
    buckets = p.counters.get(COUNTER, {}) if "where" in node else p.hourly.get(node.get("event"), {})
    if "trend" in node:
        days = parse_duration(node["trend"]["window"]).days
        if node.get("require_full_window", True) and too_new(p, timedelta(days=2 * days), now):
            return negated
        # Whole UTC days: the N days ending today against the N days before them.
        today = epoch_day(now)
        day_of = {h: epoch_day(hour_start(h)) for h in buckets}
        current = sum(n for h, n in buckets.items() if day_of[h] > today - days)
        previous = sum(n for h, n in buckets.items() if today - 2 * days < day_of[h] <= today - days)
        change = (current - previous) / previous if previous else (float("inf") if current else 0.0)
        lte, gte = node["trend"].get("change_lte"), node["trend"].get("change_gte")
        return (lte is None or change <= lte) and (gte is None or change >= gte)
    span = parse_duration(node["within"])

    def in_window(hour: int) -> bool:
        # docs: an hour bucket counts when the hour it covers overlaps (now - w, now]
        return hour_start(hour) + timedelta(hours=1) > now - span

    comparison = node.get("count") or node.get("active_days") or node.get("distinct_events")
    if guarded(node, is_absence(comparison), negated) and too_new(p, span, now):
        return negated
    if "count" in node:
        n = sum(c for h, c in buckets.items() if in_window(h))
    elif "active_days" in node:
        n = len(
            {
                epoch_day(hour_start(h))
                for hours in p.hourly.values()
                for h, c in hours.items()
                if in_window(h) and c
            }
        )
    else:
        prefix = node.get("prefix") or ""
        n = sum(
            1
            for name, hours in p.hourly.items()
            if name.startswith(prefix) and any(in_window(h) and c for h, c in hours.items())
        )
    return compare(comparison, n)


# --- random rules and profiles -------------------------------------------------------------------

DATES = ["2026-11-01", "2026-11-20", "2026-11-23T11:00:00Z", "2026-10-01T00:00:00+02:00"]
DURATIONS = ["12h", "1d", "3d", "7d", "P14D", "30d"]
TRAIT_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 300),
    st.sampled_from([0.5, 200.0, 1.0]),
    st.sampled_from(
        ["pro", "free", "enterprise", "DE", "pro-trial", "", "2026-11-20", "2026-11-23T10:00:00Z"]
    ),
    st.lists(st.sampled_from(["pro", "eu", 1, True]), max_size=3),
    st.integers(1_790_000_000, 1_800_000_000),
    st.integers(1_790_000_000_000, 1_800_000_000_000),
)
SCALARS = st.one_of(
    st.sampled_from(["pro", "free", "DE", "2026-11-20"]), st.integers(0, 300), st.booleans(), st.just(1.0)
)


@st.composite
def trait_nodes(draw: st.DrawFn) -> dict:
    path = draw(st.sampled_from(["plan", "size", "company.size", "tags", "at", "missing"]))
    op = draw(
        st.sampled_from(
            [
                "eq",
                "ne",
                "lt",
                "lte",
                "gt",
                "gte",
                "in",
                "not_in",
                "contains",
                "not_contains",
                "starts_with",
                "ends_with",
                "exists",
                "not_exists",
                "before",
                "after",
                "within_last",
                "more_than_ago",
                "between",
            ]
        )
    )
    value: Any
    if op in ("eq", "ne", "contains", "not_contains"):
        value = draw(SCALARS)
    elif op in ("lt", "lte", "gt", "gte"):
        value = draw(st.one_of(st.integers(-1, 301), st.sampled_from([0.5, 200.0])))
    elif op in ("in", "not_in"):
        value = draw(st.lists(SCALARS, min_size=1, max_size=3))
    elif op in ("starts_with", "ends_with"):
        value = draw(st.sampled_from(["pro", "e", "-trial"]))
    elif op in ("before", "after"):
        value = draw(st.sampled_from(DATES))
    elif op in ("within_last", "more_than_ago"):
        value = draw(st.sampled_from(DURATIONS))
    elif op == "between":
        value = sorted(draw(st.lists(st.sampled_from(DATES[:2]), min_size=2, max_size=2)))
    else:
        return {"trait": path, "op": op}
    return {"trait": path, "op": op, "value": value}


COMPARISONS = st.builds(
    lambda op, n: {op: n}, st.sampled_from(["eq", "ne", "lt", "lte", "gt", "gte"]), st.integers(0, 4)
)
FULL_WINDOW = st.sampled_from([{}, {}, {"require_full_window": True}, {"require_full_window": False}])
WINDOWS = st.sampled_from(["1h", "5h", "12h", "36h", "1d", "7d", "P14D", "30d"])


def leaf_nodes() -> st.SearchStrategy[dict]:
    event = st.sampled_from(["login", "report", "feature.a", "feature.b"])
    seen_condition = st.one_of(
        st.builds(
            lambda op, d: {op: d},
            st.sampled_from(["within_last", "more_than_ago"]),
            st.sampled_from(DURATIONS),
        ),
        st.builds(lambda op, d: {op: d}, st.sampled_from(["before", "after"]), st.sampled_from(DATES)),
    )
    return st.one_of(
        trait_nodes(),
        st.builds(
            lambda e, c, w, f: {"event": e, "count": c, "within": w} | f,
            event,
            COMPARISONS,
            WINDOWS,
            FULL_WINDOW,
        ),
        st.builds(
            lambda c, w: {"event": "login", "where": WHERE, "count": c, "within": w}, COMPARISONS, WINDOWS
        ),
        st.builds(
            lambda e, w, bound, f: {"event": e, "trend": {"window": w, **bound}} | f,
            event,
            st.sampled_from(["1d", "7d", "14d"]),
            st.sampled_from([{"change_lte": -0.5}, {"change_gte": 1.0}, {"change_gte": 0.0}]),
            st.sampled_from([{}, {"require_full_window": False}]),
        ),
        st.builds(lambda c: {"last_seen": c}, seen_condition),
        st.builds(
            lambda d, f: {"last_seen": {"more_than_ago": d}} | f, st.sampled_from(DURATIONS), FULL_WINDOW
        ),
        st.builds(lambda c: {"first_seen": c}, seen_condition),
        st.builds(lambda c, w, f: {"active_days": c, "within": w} | f, COMPARISONS, WINDOWS, FULL_WINDOW),
        st.builds(
            lambda c, w, prefix: {"distinct_events": c, "within": w} | prefix,
            COMPARISONS,
            WINDOWS,
            st.sampled_from([{}, {"prefix": "feature."}]),
        ),
        st.builds(lambda s: {"segment": s}, st.sampled_from(["vip", "beta"])),
    )


RULES = st.recursive(
    leaf_nodes(),
    lambda children: st.one_of(
        st.builds(lambda c: {"all": c}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda c: {"any": c}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda c: {"not": c}, children),
    ),
    max_leaves=6,
)
# Hour buckets anywhere in the retention, and next to the window boundaries (and clock skew).
HOURS = st.one_of(
    st.integers(THIS_HOUR - 70 * 24, THIS_HOUR + 24),
    st.builds(
        lambda hours, offset: THIS_HOUR - hours + offset,
        st.sampled_from([12, 24, 72, 168, 336, 720]),
        st.integers(-14, 14),
    ),
)
BUCKETS = st.dictionaries(HOURS, st.integers(0, 3), max_size=6)


@st.composite
def profiles(draw: st.DrawFn) -> ProfileView:
    tenure = draw(st.one_of(st.none(), st.floats(0, 90)))
    first_seen = None if tenure is None else NOW - timedelta(days=tenure)
    seen_ago = draw(st.one_of(st.none(), st.floats(0, 60)))
    last_seen = None if seen_ago is None else NOW - timedelta(days=seen_ago)
    traits = {
        key: value for key in ("plan", "size", "tags", "at") if (value := draw(TRAIT_VALUES)) is not None
    }
    traits["company"] = draw(
        st.one_of(st.none(), st.builds(lambda v: {"size": v}, TRAIT_VALUES), st.just("Acme"))
    )
    events = draw(
        st.dictionaries(st.sampled_from(["login", "report", "feature.a", "feature.b", "$page"]), BUCKETS)
    )
    return ProfileView(
        user_id="u",
        traits=traits,
        first_seen=first_seen,
        last_seen=last_seen,
        hourly=events,
        counters={COUNTER: draw(BUCKETS)},
        segments=frozenset(draw(st.lists(st.sampled_from(["vip", "beta"])))),
    )


NOWS = st.builds(lambda minutes: NOW + timedelta(minutes=minutes), st.integers(-720, 720))
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(RULES, profiles(), NOWS)
def test_compiled_rules_agree_with_the_reference_interpreter(raw, profile, now):
    rule = compile_rule(parse_rule(raw), segment_rule=lambda _: None)
    assert rule.matches(profile, now) == reference(raw, profile, now)
    assert rule.explain(profile, now)["value"] == rule.matches(profile, now)


@SETTINGS
@given(RULES, profiles(), NOWS, st.lists(st.floats(0, 1), min_size=1, max_size=6))
def test_next_flip_is_never_late(raw, profile, now, fractions):
    rule = compile_rule(parse_rule(raw), segment_rule=lambda _: None)
    flip = rule.next_flip(profile, now)
    assert flip is None or flip > now
    if flip is None and rule.is_time_dependent:
        until = now + timedelta(days=200)
    elif flip is None:
        return
    else:
        until = flip
    # The latest instant before the flip, hour and day boundaries, and random points in between.
    moments = [until - timedelta(microseconds=1)]
    moments += [now + (until - now) * fraction for fraction in fractions]
    moments += [day_start(d) for d in range(epoch_day(now) + 1, epoch_day(until) + 1)][:60]
    first_hour = int(now.timestamp() // 3600) + 1
    moments += [hour_start(h) for h in range(first_hour, first_hour + 72)]
    moments = [moment for moment in moments if now <= moment < until]
    expected = rule.matches(profile, now)
    for moment in moments:
        assert rule.matches(profile, moment) == expected, moment
