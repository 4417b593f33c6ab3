"""Compile a validated Rule into a fast predicate over ProfileView, with explain and next flip time.

Each rule node becomes a small object holding a `test(profile, bounds)` closure with every
constant precomputed. `bounds` is a list of values derived from `now` (window start days,
cut-off moments), computed once per distinct `now` by `_Clock`, so a sweep that evaluates many
profiles at one `now` pays for them once. No pydantic and no parsing in the hot loop.

Semantics the docs (docs/rules.md) promise:
- An event window `w` (whole hours) covers every UTC hour bucket that overlaps (now - w, now]:
  the buckets epoch_hour(now - w) through the current hour. Buckets dated later (clock skew)
  count as the current hour.
- `active_days` counts the UTC days of those buckets.
- A trend over `Nd` compares the N UTC days ending today with the N days before them.
- "Absence" literals (count eq 0 / lt / lte, more_than_ago, and "at least" counts under a `not`)
  are never satisfied by users observed for less than the window (`require_full_window`).
"""

import hashlib
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cohortcast.clock import epoch_day
from cohortcast.errors import Unprocessable
from cohortcast.profiles.behaviour import epoch_hour
from cohortcast.profiles.model import ProfileView
from cohortcast.segments.durations import DAY, day_start, hour_start, moment_of, parse_bound, parse_duration
from cohortcast.segments.rules import (
    ActiveDays,
    AllOf,
    AnyOf,
    Comparison,
    DistinctEvents,
    EventCount,
    EventTrend,
    FirstSeen,
    LastSeen,
    NotNode,
    PropertyAll,
    PropertyAny,
    PropertyCondition,
    PropertyNot,
    Rule,
    SegmentRef,
    TraitCondition,
)

Bounds = list[Any]
Predicate = Callable[[ProfileView, Bounds], bool]
ValueTest = Callable[[Any], bool]
_ONE_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class CounterSpec:
    """A filtered event counter the ingest path keeps in `profile.counters[counter_id]`."""

    counter_id: str
    event: str
    matches_properties: Callable[[dict[str, Any]], bool]


class _Clock:
    """The `now`-derived constants of one rule, each in a slot of the bounds list."""

    def __init__(self) -> None:
        self._slots: dict[tuple[str, timedelta], int] = {}

    def _slot(self, kind: str, span: timedelta) -> int:
        return self._slots.setdefault((kind, span), len(self._slots))

    def start_hour(self, window: timedelta) -> int:
        """The oldest hour bucket of a trailing window."""
        return self._slot("start_hour", window)

    def today(self) -> int:
        return self._slot("day", timedelta(0))

    def cutoff(self, span: timedelta) -> int:
        return self._slot("cutoff", span)

    def now(self) -> int:
        return self._slot("cutoff", timedelta(0))

    def bounds(self, now: datetime) -> Bounds:
        values: Bounds = [None] * len(self._slots)
        for (kind, span), slot in self._slots.items():
            if kind == "start_hour":
                values[slot] = epoch_hour(now - span)
            elif kind == "day":
                values[slot] = epoch_day(now - span)
            else:
                values[slot] = now - span
        return values


# --- values: traits and event properties -------------------------------------------------------


def _walk(data: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if type(data) is not dict:
            return None
        data = data.get(key)
    return data


def _equals(expected: Any) -> ValueTest:
    # Typed equality: True is not 1, and "1" is not 1.
    if type(expected) is bool:
        return lambda actual: actual is expected
    if type(expected) is str:
        return lambda actual: actual == expected
    return lambda actual: actual == expected and type(actual) is not bool


def _member_of(values: list[Any]) -> ValueTest:
    texts = frozenset(v for v in values if type(v) is str)
    numbers = frozenset(v for v in values if type(v) in (int, float))
    flags = frozenset(v for v in values if type(v) is bool)
    if not numbers and not flags:
        return lambda actual: type(actual) is str and actual in texts

    def member(actual: Any) -> bool:
        kind = type(actual)
        if kind is str:
            return actual in texts
        if kind is int or kind is float:
            return actual in numbers
        return kind is bool and actual in flags

    return member


def _contains(expected: Any) -> ValueTest:
    element = _equals(expected)

    def contains(actual: Any) -> bool:
        if type(actual) is str:
            return type(expected) is str and expected in actual
        return type(actual) is list and any(element(item) for item in actual)

    return contains


def _number_test(op: str, limit: float) -> ValueTest:
    # int and float compare exactly in Python; bool is excluded on purpose.
    if op == "lt":
        return lambda actual: (type(actual) is int or type(actual) is float) and actual < limit
    if op == "lte":
        return lambda actual: (type(actual) is int or type(actual) is float) and actual <= limit
    if op == "gt":
        return lambda actual: (type(actual) is int or type(actual) is float) and actual > limit
    return lambda actual: (type(actual) is int or type(actual) is float) and actual >= limit


def _moment_range(op: str, value: Any) -> Callable[[datetime], bool]:
    """before / after / between on a fixed date; a date-only bound means that whole UTC day."""
    if op == "between":
        (start, _), (end, end_is_day) = parse_bound(value[0]), parse_bound(value[1])
        end = end + DAY if end_is_day else end + _ONE_MICROSECOND
        return lambda moment: start <= moment < end
    if op == "before":
        end = parse_bound(value)[0]
        return lambda moment: moment < end
    bound, is_day = parse_bound(value)
    start = bound + DAY if is_day else bound + _ONE_MICROSECOND
    return lambda moment: moment >= start


def _moment_test(op: str, value: Any) -> ValueTest:
    in_range = _moment_range(op, value)

    def test(actual: Any) -> bool:
        moment = moment_of(actual)
        return moment is not None and in_range(moment)

    return test


def value_test(op: str, value: Any) -> ValueTest:
    """A test of one trait or property value (None when missing) for ops that don't need `now`."""
    negate = op in ("ne", "not_in", "not_contains")
    positive = {"ne": "eq", "not_in": "in", "not_contains": "contains"}.get(op, op)
    if positive == "eq":
        test = _equals(value)
    elif positive == "in":
        test = _member_of(value)
    elif positive == "contains":
        test = _contains(value)
    elif op in ("lt", "lte", "gt", "gte"):
        test = _number_test(op, value)
    elif op == "starts_with":
        test = lambda actual: type(actual) is str and actual.startswith(value)  # noqa: E731
    elif op == "ends_with":
        test = lambda actual: type(actual) is str and actual.endswith(value)  # noqa: E731
    elif op == "exists":
        test = lambda actual: actual is not None  # noqa: E731
    elif op == "not_exists":
        test = lambda actual: actual is None  # noqa: E731
    else:
        test = _moment_test(op, value)
    # Negative ops are exact complements: a user without a plan is "not on the free plan".
    return (lambda actual: not test(actual)) if negate else test


def _property_test(node: Any) -> Callable[[dict[str, Any]], bool]:
    if isinstance(node, PropertyAll):
        tests = [_property_test(child) for child in node.nodes]
        return lambda props: all(test(props) for test in tests)
    if isinstance(node, PropertyAny):
        tests = [_property_test(child) for child in node.nodes]
        return lambda props: any(test(props) for test in tests)
    if isinstance(node, PropertyNot):
        inner = _property_test(node.node)
        return lambda props: not inner(props)
    assert isinstance(node, PropertyCondition)
    keys, test = tuple(node.property.split(".")), value_test(node.op, node.value)
    return lambda props: test(_walk(props, keys))


def counter_id(event: str, where: Any) -> str:
    """Stable id of an (event, where) counter: a short hash of its canonical JSON."""
    canonical = json.dumps(
        {"event": event, "where": where.as_json()}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return "c_" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


# --- counting over hour buckets -------------------------------------------------------------


def _count_test(comparison: Comparison) -> Callable[[int], bool]:
    op, number = comparison.op
    return {
        "eq": lambda n: n == number,
        "ne": lambda n: n != number,
        "lt": lambda n: n < number,
        "lte": lambda n: n <= number,
        "gt": lambda n: n > number,
        "gte": lambda n: n >= number,
    }[op]


def _window_sum(hours: dict[int, int] | None, start: int) -> int:
    if not hours:
        return 0
    total = 0
    for hour in hours:
        if hour >= start:
            total += hours[hour]
    return total


def _at_least(hours: dict[int, int] | None, start: int, least: int) -> bool:
    """At least `least` in the buckets from `start` on, stopping as soon as it is reached."""
    if hours:
        total = 0
        for hour in hours:
            if hour >= start:
                total += hours[hour]
                if total >= least:
                    return True
    return False


def _at_least_test(source: str, key: str, slot: int, least: int) -> Predicate:
    """At least N in the window", stopping as soon as N is reached (the common case).

    The loop is written out per source so the hot path pays one call per node, not two; it walks
    keys and reads counts only inside the window (most buckets of an active user are older).
    """
    if least <= 0:
        return lambda profile, bounds: True

    def from_events(profile: ProfileView, bounds: Bounds) -> bool:
        hours = profile.hourly.get(key)
        if hours:
            start, total = bounds[slot], 0
            for hour in hours:
                if hour >= start:
                    total += hours[hour]
                    if total >= least:
                        return True
        return False

    def from_counter(profile: ProfileView, bounds: Bounds) -> bool:
        hours = profile.counters.get(key)
        if hours:
            start, total = bounds[slot], 0
            for hour in hours:
                if hour >= start:
                    total += hours[hour]
                    if total >= least:
                        return True
        return False

    return from_events if source == "hourly" else from_counter


def _leave_time(hour: int, window: timedelta) -> datetime:
    """When hour bucket `hour` stops overlapping (now - window, now]."""
    return hour_start(hour + 1) + window


def _leave_times(hours: dict[int, int], start: int, window: timedelta) -> Iterator[tuple[datetime, int]]:
    """When each non-empty bucket in the window leaves it, oldest first, with its count."""
    for hour in sorted(h for h, count in hours.items() if h >= start and count):
        yield _leave_time(hour, window), hours[hour]


def _first_change(
    leaving: Iterator[tuple[datetime, int]], total: int, holds: Callable[[int], bool]
) -> datetime | None:
    """The first leave time at which the windowed total stops (or starts) satisfying `holds`."""
    now_value = holds(total)
    for moment, count in leaving:
        total -= count
        if holds(total) != now_value:
            return moment
    return None


def _active_days(profile: ProfileView, start: int) -> dict[int, int]:
    """UTC days with an event in the window (from hour bucket `start` on), with their last hour."""
    last: dict[int, int] = {}
    for hours in profile.hourly.values():
        for hour, count in hours.items():
            if hour >= start and count:
                day = hour // 24
                if last.get(day, -1) < hour:
                    last[day] = hour
    return last


def _distinct_events(profile: ProfileView, start: int, prefix: str | None) -> dict[str, int]:
    """Events performed in the window (filtered by prefix) with the last hour each was performed."""
    last: dict[str, int] = {}
    for name, hours in profile.hourly.items():
        if prefix is None or name.startswith(prefix):
            active = [hour for hour, count in hours.items() if hour >= start and count]
            if active:
                last[name] = max(active)
    return last


def _from_hour(hour: int) -> str:
    return hour_start(hour).isoformat().replace("+00:00", "Z")


def trend_change(current: int, previous: int) -> float:
    """(current - previous) / previous; from nothing to something is +inf, nothing to nothing is 0."""
    if previous == 0:
        return math.inf if current > 0 else 0.0
    return (current - previous) / previous


# --- compiled nodes ------------------------------------------------------------------------


class _Compiled:
    """One compiled node: `test` is the hot path; explain and flip are the slow, careful paths.

    `expression` (and `statements`, at the top of an `all`) give the node as Python source for
    `_generate`, which turns a whole rule into one function; a node without its own source is
    called through its `test` closure. `cost` orders the children of `all`/`any`.
    """

    test: Predicate
    time_dependent: bool = False
    cost: int = 20

    def expression(self, code: "_Source") -> str:
        return f"{code.constant(self.test)}(profile, {code.bounds})"

    def statements(self, code: "_Source") -> list[str]:
        """Lines that `return False` when the node is false and fall through when it is true."""
        return [f"if not ({self.expression(code)}):", "    return False"]

    def __init__(self, node: Any) -> None:
        self.node = node

    def explain(self, profile: ProfileView, now: datetime, bounds: Bounds) -> dict[str, Any]:
        return self._explained(self.test(profile, bounds), self.detail(profile, now))

    def _explained(self, value: bool, detail: dict[str, Any], children: list[Any] | None = None) -> dict:
        return {"node": self.node.as_json(), "value": value, "detail": detail, "children": children or []}

    def detail(self, profile: ProfileView, now: datetime) -> dict[str, Any]:
        return {}

    def flip(self, profile: ProfileView, now: datetime, bounds: Bounds) -> datetime | None:
        return None

    def counters(self) -> Iterator[CounterSpec]:
        return iter(())


class _Logic(_Compiled):
    def __init__(self, node: Any, children: list[_Compiled], is_all: bool) -> None:
        super().__init__(node)
        self.children, self.is_all = children, is_all
        self.time_dependent = any(child.time_dependent for child in children)
        tests = [child.test for child in children]
        self.test = _all_test(tests) if is_all else _any_test(tests)

    @property
    def cost(self) -> int:  # type: ignore[override]
        return sum(child.cost for child in self.children)

    def _cheapest_first(self) -> list[_Compiled]:
        # Children are pure, so any order gives the same answer: cheap checks short-circuit first.
        return sorted(self.children, key=lambda child: child.cost)

    def expression(self, code: "_Source") -> str:
        joiner = " and " if self.is_all else " or "
        return "(" + joiner.join(child.expression(code) for child in self._cheapest_first()) + ")"

    def statements(self, code: "_Source") -> list[str]:
        if not self.is_all:
            return super().statements(code)
        return [line for child in self._cheapest_first() for line in child.statements(code)]

    def explain(self, profile: ProfileView, now: datetime, bounds: Bounds) -> dict[str, Any]:
        children = [child.explain(profile, now, bounds) for child in self.children]
        return self._explained(self.test(profile, bounds), {}, children)

    def flip(self, profile: ProfileView, now: datetime, bounds: Bounds) -> datetime | None:
        # A true `all` (false `any`) changes when any child does; a false `all` stays false until
        # every false child can have flipped (a true `any` likewise with its true children).
        if self.test(profile, bounds) == self.is_all:
            flips = [f for child in self.children if (f := child.flip(profile, now, bounds)) is not None]
            return min(flips, default=None)
        deciding = [child for child in self.children if child.test(profile, bounds) != self.is_all]
        flips = [child.flip(profile, now, bounds) for child in deciding]
        return None if None in flips else max(flips)  # type: ignore[type-var]

    def counters(self) -> Iterator[CounterSpec]:
        for child in self.children:
            yield from child.counters()


def _all_test(tests: list[Predicate]) -> Predicate:
    # Fixed arities avoid a loop in the hot path for the common small cases.
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda p, t: a(p, t) and b(p, t)
    if len(tests) == 3:
        a, b, c = tests
        return lambda p, t: a(p, t) and b(p, t) and c(p, t)

    def test(profile: ProfileView, bounds: Bounds) -> bool:
        return all(each(profile, bounds) for each in tests)

    return test


def _any_test(tests: list[Predicate]) -> Predicate:
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda p, t: a(p, t) or b(p, t)

    def test(profile: ProfileView, bounds: Bounds) -> bool:
        return any(each(profile, bounds) for each in tests)

    return test


class _Not(_Compiled):
    def __init__(self, node: NotNode, child: _Compiled) -> None:
        super().__init__(node)
        self.child, self.time_dependent = child, child.time_dependent
        inner = child.test
        self.test = lambda profile, bounds: not inner(profile, bounds)
        self.cost = child.cost

    def expression(self, code: "_Source") -> str:
        return f"(not {self.child.expression(code)})"

    def explain(self, profile: ProfileView, now: datetime, bounds: Bounds) -> dict[str, Any]:
        return self._explained(self.test(profile, bounds), {}, [self.child.explain(profile, now, bounds)])

    def flip(self, profile: ProfileView, now: datetime, bounds: Bounds) -> datetime | None:
        return self.child.flip(profile, now, bounds)

    def counters(self) -> Iterator[CounterSpec]:
        return self.child.counters()


class _Trait(_Compiled):
    def __init__(self, node: TraitCondition, clock: _Clock) -> None:
        super().__init__(node)
        self.keys = tuple(node.trait.split("."))
        if node.op in ("within_last", "more_than_ago"):
            self.time_dependent = True
            self.span = parse_duration(node.value)
            self.test = _relative_moment_test(node.op, self._value, clock.cutoff(self.span), clock.now())
        else:
            self.test = _trait_test(self.keys, node.op, node.value)
            self.cost = len(self.keys)

    def expression(self, code: "_Source") -> str:
        if self.time_dependent:
            return super().expression(code)
        return _trait_source(code, self.keys, self.node.op, self.node.value)

    def _value(self, profile: ProfileView) -> Any:
        return _walk(profile.traits, self.keys)

    def detail(self, profile: ProfileView, now: datetime) -> dict[str, Any]:
        return {"trait": self.node.trait, "actual": self._value(profile)}

    def flip(self, profile: ProfileView, now: datetime, bounds: Bounds) -> datetime | None:
        if not self.time_dependent:
            return None
        return _relative_flip(self.node.op, moment_of(self._value(profile)), self.span, now)


def _trait_test(keys: tuple[str, ...], op: str, value: Any) -> Predicate:
    """Read the trait and test it, in one call for the most common shapes."""
    if len(keys) == 1:
        key = keys[0]
        if op == "eq" and type(value) is str:
            return lambda profile, bounds: profile.traits.get(key) == value
        if op == "in" and all(type(item) is str for item in value):
            texts = frozenset(value)
            return lambda profile, bounds: type(actual := profile.traits.get(key)) is str and actual in texts
        test = value_test(op, value)
        return lambda profile, bounds: test(profile.traits.get(key))
    test = value_test(op, value)
    if len(keys) == 2:
        outer, inner = keys

        def nested(profile: ProfileView, bounds: Bounds) -> bool:
            parent = profile.traits.get(outer)
            return test(parent.get(inner) if type(parent) is dict else None)

        return nested
    return lambda profile, bounds: test(_walk(profile.traits, keys))


_NUMBER_OPS = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


def _trait_source(code: "_Source", keys: tuple[str, ...], op: str, value: Any) -> str:
    """A trait condition as one expression, mirroring `_trait_test` and `value_test` exactly."""
    if len(keys) == 1:
        read = f"{code.traits}.get({code.constant(keys[0])})"
    elif len(keys) == 2:
        parent = code.name()
        read = (
            f"({parent}.get({code.constant(keys[1])}) "
            f"if type({parent} := {code.traits}.get({code.constant(keys[0])})) is dict else None)"
        )
    else:
        read = f"{code.constant(_walk)}({code.traits}, {code.constant(keys)})"
    actual = code.name()
    if op == "eq" and type(value) is str:
        return f"({read} == {code.constant(value)})"
    if op == "in" and all(type(item) is str for item in value):
        return f"(type({actual} := {read}) is str and {actual} in {code.constant(frozenset(value))})"
    if op in _NUMBER_OPS:
        kind = code.name()
        return (
            f"((({kind} := type({actual} := {read})) is int or {kind} is float) "
            f"and {actual} {_NUMBER_OPS[op]} {code.constant(value)})"
        )
    if op == "exists":
        return f"({read} is not None)"
    if op == "not_exists":
        return f"({read} is None)"
    return f"{code.constant(value_test(op, value))}({read})"


def _relative_moment_test(op: str, read: Callable[[ProfileView], Any], cutoff: int, now: int) -> Predicate:
    """within_last: cutoff <= moment <= now; more_than_ago: moment < cutoff (cutoff = now - span)."""
    if op == "within_last":

        def test(profile: ProfileView, bounds: Bounds) -> bool:
            moment = moment_of(read(profile))
            return moment is not None and bounds[cutoff] <= moment <= bounds[now]

        return test

    def older(profile: ProfileView, bounds: Bounds) -> bool:
        moment = moment_of(read(profile))
        return moment is not None and moment < bounds[cutoff]

    return older


def _relative_flip(op: str, moment: datetime | None, span: timedelta, now: datetime) -> datetime | None:
    if moment is None:
        return None
    if op == "within_last" and now < moment:
        return moment  # a future moment comes into range when it arrives
    # Both ops switch just after `moment + span`: within_last ends, more_than_ago begins.
    try:
        end = moment + span
        return end + _ONE_MICROSECOND if now <= end else None
    except OverflowError:  # a trait such as 9999-12-31: the answer never changes before year 10000
        return None


class _Seen(_Compiled):
    """last_seen / first_seen conditions; datetimes straight from the profile."""

    def __init__(self, node: LastSeen | FirstSeen, clock: _Clock) -> None:
        super().__init__(node)
        self.field = "last_seen" if isinstance(node, LastSeen) else "first_seen"
        self.op, value = getattr(node, self.field).op
        field = self.field
        if self.op in ("within_last", "more_than_ago"):
            self.time_dependent, self.span = True, parse_duration(value)
            self.slots = clock.cutoff(self.span), clock.now()
            self.test = _relative_seen_test(self.op, field, *self.slots)
            self.cost = 1
        else:
            in_range = _moment_range(self.op, value)

            def test(profile: ProfileView, bounds: Bounds) -> bool:
                moment = getattr(profile, field)
                return moment is not None and in_range(moment)

            self.test = test

    def expression(self, code: "_Source") -> str:
        if not self.time_dependent:
            return super().expression(code)
        moment, (cutoff, now), b = code.name(), self.slots, code.bounds
        read = f"({moment} := profile.{self.field}) is not None"
        if self.op == "within_last":
            return f"({read} and {b}[{cutoff}] <= {moment} <= {b}[{now}])"
        return f"({read} and {moment} < {b}[{cutoff}])"

    def detail(self, profile: ProfileView, now: datetime) -> dict[str, Any]:
        moment = getattr(profile, self.field)
        return {self.field: moment.isoformat() if moment else None}

    def flip(self, profile: ProfileView, now: datetime, bounds: Bounds) -> datetime | None:
        if not self.time_dependent:
            return None
        return _relative_flip(self.op, getattr(profile, self.field), self.span, now)


def _relative_seen_test(op: str, field: str, cutoff: int, now: int) -> Predicate:
    if op == "within_last" and field == "last_seen":
        # "Seen recently" is the most common condition there is: read the slot directly.

        def seen_recently(profile: ProfileView, bounds: Bounds) -> bool:
            moment = profile.last_seen
            return moment is not None and bounds[cutoff] <= moment <= bounds[now]

        return seen_recently
    if op == "within_last":

        def within(profile: ProfileView, bounds: Bounds) -> bool:
            moment = getattr(profile, field)
            return moment is not None and bounds[cutoff] <= moment <= bounds[now]

        return within

    def older(profile: ProfileView, bounds: Bounds) -> bool:
        moment = getattr(profile, field)
        return moment is not None and moment < bounds[cutoff]

    return older


class _Windowed(_Compiled):
    """A behaviour node over a trailing window, with the tenure guard for absence conditions.

    Subclasses set `span` (how far back the node looks), `measure_test` and implement `measure`,
    `measure_detail` and `measure_flip`.
    """

    time_dependent = True
    span: timedelta
    measure_test: Predicate

    def _guard(self, clock: _Clock, guarded: bool, negated: bool) -> None:
        # Under a `not`, the node's false is the literal's true: "too new" makes the literal false.
        self.guarded, self.too_new_value = guarded, negated
        inner = self.measure_test
        if not guarded:
            self.test = inner
            return
        cutoff, too_new_value = clock.cutoff(self.span), negated
        self.guard_slot = cutoff

        def test(profile: ProfileView, bounds: Bounds) -> bool:
            first_seen = profile.first_seen
            if first_seen is None or first_seen > bounds[cutoff]:
                return too_new_value
            return inner(profile, bounds)

        self.test = test

    def measure_expression(self, code: "_Source") -> str:
        return f"{code.constant(self.measure_test)}(profile, {code.bounds})"

    def expression(self, code: "_Source") -> str:
        measure = self.measure_expression(code)
        if not self.guarded:
            return measure
        first_seen, b = code.name(), code.bounds
        return (
            f"({measure} if ({first_seen} := profile.first_seen) is not None "
            f"and {first_seen} <= {b}[{self.guard_slot}] else {self.too_new_value!r})"
        )

    def _too_new(self, profile: ProfileView, now: datetime) -> bool:
        return profile.first_seen is None or profile.first_seen > now - self.span

    def explain(self, profile: ProfileView, now: datetime, bounds: Bounds) -> dict[str, Any]:
        result = super().explain(profile, now, bounds)
        result["detail"]["require_full_window"] = self.guarded
        if self._too_new(profile, now):
            result["too_new"] = True
        return result

    def flip(self, profile: ProfileView, now: datetime, bounds: Bounds) -> datetime | None:
        flips = [self.measure_flip(profile, now)]
        if self.guarded and profile.first_seen is not None and now < profile.first_seen + self.span:
            flips.append(profile.first_seen + self.span)
        return min((f for f in flips if f is not None), default=None)

    def measure_flip(self, profile: ProfileView, now: datetime) -> datetime | None:
        raise NotImplementedError


class _EventCount(_Windowed):
    def __init__(self, node: EventCount, clock: _Clock, guarded: bool, negated: bool) -> None:
        super().__init__(node)
        self.span = parse_duration(node.within)
        source, key, self.counter = _event_source(node.event, node.where)
        self.read = lambda profile: getattr(profile, source).get(key)
        self.holds = _count_test(node.count)
        slot, op, number = clock.start_hour(self.span), *node.count.op
        self.source, self.key, self.slot, self.op, self.number = source, key, slot, op, number
        if op in ("gte", "gt"):
            self.measure_test = _at_least_test(source, key, slot, number + (op == "gt"))
        else:
            read, holds = self.read, self.holds
            self.measure_test = lambda profile, bounds: holds(_window_sum(read(profile), bounds[slot]))
        self._guard(clock, guarded, negated)

    cost = 10

    def measure_expression(self, code: "_Source") -> str:
        days, start = f"profile.{self.source}.get({code.constant(self.key)})", f"{code.bounds}[{self.slot}]"
        if self.op in ("gte", "gt"):
            least = self.number + (self.op == "gt")
            if least <= 0:
                return "True"
            return f"{code.constant(_at_least)}({days}, {start}, {code.constant(least)})"
        compare = {"eq": "==", "ne": "!=", "lt": "<", "lte": "<="}[self.op]
        return f"({code.constant(_window_sum)}({days}, {start}) {compare} {code.constant(self.number)})"

    def statements(self, code: "_Source") -> list[str]:
        # "At least N" at the top of an `all` is the commonest behaviour condition: loop inline.
        least = self.number + (self.op == "gt")
        if self.guarded or self.op not in ("gte", "gt") or least <= 0:
            return super().statements(code)
        return [
            f"hours = profile.{self.source}.get({code.constant(self.key)})",
            "if not hours:",
            "    return False",
            f"start, total, least = {code.bounds}[{self.slot}], 0, {code.constant(least)}",
            "for hour in hours:",
            "    if hour >= start:",
            "        total += hours[hour]",
            "        if total >= least:",
            "            break",
            "else:",
            "    return False",
        ]

    def detail(self, profile: ProfileView, now: datetime) -> dict[str, Any]:
        start = epoch_hour(now - self.span)
        detail = {"count": _window_sum(self.read(profile), start), "from_hour": _from_hour(start)}
        return detail | ({"counter_id": self.counter.counter_id} if self.counter else {})

    def measure_flip(self, profile: ProfileView, now: datetime) -> datetime | None:
        hours, start = self.read(profile) or {}, epoch_hour(now - self.span)
        return _first_change(_leave_times(hours, start, self.span), _window_sum(hours, start), self.holds)

    def counters(self) -> Iterator[CounterSpec]:
        return iter([self.counter] if self.counter else [])


def _event_source(event: str, where: Any) -> tuple[str, str, CounterSpec | None]:
    """Where an event node reads its hour buckets: the event's own, or its filtered counter."""
    if where is None:
        return "hourly", event, None
    spec = CounterSpec(counter_id(event, where), event, _property_test(where))
    return "counters", spec.counter_id, spec


class _EventTrend(_Windowed):
    cost = 30

    def __init__(self, node: EventTrend, clock: _Clock, guarded: bool, negated: bool) -> None:
        super().__init__(node)
        self.days = parse_duration(node.trend.window) // DAY
        self.span = 2 * self.days * DAY
        source, key, self.counter = _event_source(node.event, node.where)
        self.read = lambda profile: getattr(profile, source).get(key)
        lte, gte = node.trend.change_lte, node.trend.change_gte
        self.holds = lambda change: (lte is None or change <= lte) and (gte is None or change >= gte)
        today = clock.today()
        self.measure_test = lambda profile, bounds: self.holds(self._change(profile, bounds[today])[2])
        self._guard(clock, guarded, negated)

    def _change(self, profile: ProfileView, today: int) -> tuple[int, int, float]:
        hours = self.read(profile) or {}
        current_start, previous_start = today - self.days + 1, today - 2 * self.days + 1
        current = previous = 0
        for hour, count in hours.items():
            day = hour // 24
            if day >= current_start:
                current += count
            elif day >= previous_start:
                previous += count
        return current, previous, trend_change(current, previous)

    def detail(self, profile: ProfileView, now: datetime) -> dict[str, Any]:
        current, previous, change = self._change(profile, epoch_day(now))
        return {"current": current, "previous": previous, "change": None if math.isinf(change) else change}

    def measure_flip(self, profile: ProfileView, now: datetime) -> datetime | None:
        today = epoch_day(now)
        # Both windows slide at UTC midnight; with no events in them, nothing moves.
        oldest = today - 2 * self.days + 1
        active = any(count for hour, count in (self.read(profile) or {}).items() if hour // 24 >= oldest)
        return day_start(today + 1) if active else None

    def counters(self) -> Iterator[CounterSpec]:
        return iter([self.counter] if self.counter else [])


class _ActiveDays(_Windowed):
    cost = 40

    def __init__(self, node: ActiveDays, clock: _Clock, guarded: bool, negated: bool) -> None:
        super().__init__(node)
        self.span = parse_duration(node.within)
        self.holds = holds = _count_test(node.active_days)
        slot = clock.start_hour(self.span)
        self.measure_test = lambda profile, bounds: holds(len(_active_days(profile, bounds[slot])))
        self._guard(clock, guarded, negated)

    def detail(self, profile: ProfileView, now: datetime) -> dict[str, Any]:
        return {"active_days": len(_active_days(profile, epoch_hour(now - self.span)))}

    def measure_flip(self, profile: ProfileView, now: datetime) -> datetime | None:
        # A day stops counting when the last of its hours with events leaves the window.
        last = _active_days(profile, epoch_hour(now - self.span))
        leaving = ((_leave_time(hour, self.span), 1) for hour in sorted(last.values()))
        return _first_change(leaving, len(last), self.holds)


class _DistinctEvents(_Windowed):
    cost = 40

    def __init__(self, node: DistinctEvents, clock: _Clock, guarded: bool, negated: bool) -> None:
        super().__init__(node)
        self.span, self.prefix = parse_duration(node.within), node.prefix
        self.holds = holds = _count_test(node.distinct_events)
        slot, prefix = clock.start_hour(self.span), node.prefix
        self.measure_test = lambda profile, bounds: holds(
            len(_distinct_events(profile, bounds[slot], prefix))
        )
        self._guard(clock, guarded, negated)

    def detail(self, profile: ProfileView, now: datetime) -> dict[str, Any]:
        return {"events": sorted(_distinct_events(profile, epoch_hour(now - self.span), self.prefix))}

    def measure_flip(self, profile: ProfileView, now: datetime) -> datetime | None:
        last = _distinct_events(profile, epoch_hour(now - self.span), self.prefix)
        # An event leaves the window when the last hour it was performed in does.
        leaving = ((_leave_time(hour, self.span), 1) for hour in sorted(last.values()))
        return _first_change(leaving, len(last), self.holds)


class _LastSeenGuarded(_Windowed):
    """last_seen more_than_ago (or within_last under a `not`): "not seen for N days"."""

    def __init__(self, node: LastSeen, clock: _Clock, negated: bool) -> None:
        super().__init__(node)
        self.seen = _Seen(node, clock)
        self.span, self.measure_test = self.seen.span, self.seen.test
        self._guard(clock, True, negated)
        self.cost = 2

    def measure_expression(self, code: "_Source") -> str:
        return self.seen.expression(code)

    def detail(self, profile: ProfileView, now: datetime) -> dict[str, Any]:
        return self.seen.detail(profile, now)

    def measure_flip(self, profile: ProfileView, now: datetime) -> datetime | None:
        return self.seen.flip(profile, now, [])


class _StaticSegment(_Compiled):
    def __init__(self, node: SegmentRef) -> None:
        super().__init__(node)
        segment = node.segment
        self.test = lambda profile, bounds: segment in profile.segments
        self.cost = 1

    def expression(self, code: "_Source") -> str:
        return f"({code.constant(self.node.segment)} in profile.segments)"

    def detail(self, profile: ProfileView, now: datetime) -> dict[str, Any]:
        return {"segment": self.node.segment, "dynamic": False}


class _DynamicSegment(_Not):
    """A dynamic segment's rule, inlined: same value, explain and flip as its rule."""

    def __init__(self, node: SegmentRef, child: _Compiled) -> None:
        _Compiled.__init__(self, node)
        self.child, self.time_dependent, self.test = child, child.time_dependent, child.test
        self.cost = child.cost

    def expression(self, code: "_Source") -> str:
        return self.child.expression(code)

    def statements(self, code: "_Source") -> list[str]:
        return self.child.statements(code)

    def explain(self, profile: ProfileView, now: datetime, bounds: Bounds) -> dict[str, Any]:
        detail = {"segment": self.node.segment, "dynamic": True}
        return self._explained(self.test(profile, bounds), detail, [self.child.explain(profile, now, bounds)])


# --- compiling a rule ------------------------------------------------------------------------


def _default_guard(absence: bool | None, negated: bool) -> bool:
    """Guard absence literals by default; under a `not`, "at least" becomes absence."""
    return absence is not None and absence != negated


class _Compiler:
    def __init__(self, segment_rule: Callable[[str], Rule | None]) -> None:
        self.segment_rule, self.clock, self.open_segments = segment_rule, _Clock(), []

    def compile(self, node: Any, negated: bool) -> _Compiled:
        if isinstance(node, AllOf | AnyOf):
            children = [self.compile(child, negated) for child in node.nodes]
            return _Logic(node, children, isinstance(node, AllOf))
        if isinstance(node, NotNode):
            return _Not(node, self.compile(node.node, not negated))
        if isinstance(node, TraitCondition):
            return _Trait(node, self.clock)
        if isinstance(node, FirstSeen):
            return _Seen(node, self.clock)
        if isinstance(node, LastSeen):
            return self._last_seen(node, negated)
        if isinstance(node, SegmentRef):
            return self._segment(node, negated)
        return self._behaviour(node, negated)

    def _behaviour(self, node: Any, negated: bool) -> _Compiled:
        if isinstance(node, EventTrend):
            # A trend is meaningless either way over a half-observed previous window.
            guarded = node.require_full_window is not False
            return _EventTrend(node, self.clock, guarded, negated)
        comparison = {EventCount: "count", ActiveDays: "active_days", DistinctEvents: "distinct_events"}
        absence = getattr(node, comparison[type(node)]).is_absence
        guarded = node.require_full_window
        guarded = _default_guard(absence, negated) if guarded is None else guarded
        kind = {EventCount: _EventCount, ActiveDays: _ActiveDays, DistinctEvents: _DistinctEvents}[type(node)]
        return kind(node, self.clock, guarded, negated)

    def _last_seen(self, node: LastSeen, negated: bool) -> _Compiled:
        op = node.last_seen.op[0]
        absence = {"more_than_ago": True, "within_last": False}.get(op)
        guarded = node.require_full_window
        guarded = _default_guard(absence, negated) if guarded is None else guarded
        return _LastSeenGuarded(node, self.clock, negated) if guarded else _Seen(node, self.clock)

    def _segment(self, node: SegmentRef, negated: bool) -> _Compiled:
        rule = self.segment_rule(node.segment)
        if rule is None:
            return _StaticSegment(node)
        if node.segment in self.open_segments:
            cycle = " -> ".join([*self.open_segments, node.segment])
            raise Unprocessable(f"segment reference cycle: {cycle}", [{"pointer": "", "message": cycle}])
        self.open_segments.append(node.segment)
        try:
            return _DynamicSegment(node, self.compile(rule.root, negated))
        finally:
            self.open_segments.pop()


_BUILTINS = {"__builtins__": {}, "type": type, "int": int, "float": float, "str": str, "dict": dict}


class _Source:
    """The pieces of a generated `matches`: constants passed by name, fresh local names."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {}
        self.uses_traits = self.uses_bounds = False
        self._locals = 0

    def constant(self, value: Any) -> str:
        # Values from the rule never become source text: they are looked up by name.
        name = f"_k{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def name(self) -> str:
        self._locals += 1
        return f"_v{self._locals}"

    @property
    def traits(self) -> str:
        self.uses_traits = True
        return "traits"

    @property
    def bounds(self) -> str:
        self.uses_bounds = True
        return "b"


def _generate(root: _Compiled, state: list[Any], refresh: Callable[[datetime], None]) -> tuple[Any, str]:
    """One Python function for the whole rule: no call per node, locals instead of closure cells.

    The node tree stays the reference (explain and next_flip use it); this is its hot path.
    """
    code = _Source()
    body = [*root.statements(code), "return True"]
    preamble = []
    if code.uses_bounds:  # window bounds are derived once per distinct `now` (a sweep shares one)
        preamble += ["if now is not state[0]:", "    refresh(now)", "b = state[1]"]
    if code.uses_traits:
        preamble.append("traits = profile.traits")
    source = "def matches(profile, now):\n" + "".join(f"    {line}\n" for line in preamble + body)
    namespace = {**code.namespace, "state": state, "refresh": refresh, **_BUILTINS}
    exec(compile(source, "<compiled rule>", "exec"), namespace)  # our own source: no rule text in it
    return namespace["matches"], source


class CompiledRule:
    """A rule ready to evaluate: `matches(profile, now)` is the hot path (a generated function, see
    `_generate`); `explain` and `next_flip` the careful ones over the node tree."""

    matches: Callable[[ProfileView, datetime], bool]

    def __init__(self, root: _Compiled, clock: _Clock) -> None:
        self._root, self._clock = root, clock
        self._state: list[Any] = [None, []]  # [now, bounds at that now]
        self.matches, self.source = _generate(root, self._state, self._refresh)

    def _refresh(self, now: datetime) -> None:
        self._state[1] = self._clock.bounds(now)
        self._state[0] = now

    def _bounds_at(self, now: datetime) -> Bounds:
        # A sweep evaluates many profiles at one `now`: derive window bounds once.
        if now is not self._state[0]:
            self._refresh(now)
        return self._state[1]

    def explain(self, profile: ProfileView, now: datetime) -> dict[str, Any]:
        return self._root.explain(profile, now, self._bounds_at(now))

    def next_flip(self, profile: ProfileView, now: datetime) -> datetime | None:
        """Earliest moment after `now` the answer could change with no new data; None if never."""
        return self._root.flip(profile, now, self._bounds_at(now))

    def counter_specs(self) -> list[CounterSpec]:
        return list({spec.counter_id: spec for spec in self._root.counters()}.values())

    @property
    def is_time_dependent(self) -> bool:
        return self._root.time_dependent


def compile_rule(rule: Rule, *, segment_rule: Callable[[str], Rule | None]) -> CompiledRule:
    """Compile once; `segment_rule(id)` gives a referenced dynamic segment's rule, None if static."""
    compiler = _Compiler(segment_rule)
    root = compiler.compile(rule.root, negated=False)
    return CompiledRule(root, compiler.clock)
