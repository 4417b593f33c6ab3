"""The rule's nodes: one class per kind, each defining once how it evaluates, what explain shows
of it and when its answer can next change.

How a node evaluates exists only as its `source` (Python source for the generated function, see
codegen); explain and next-flip ask the node's value through that same source (`value(node)`)
and share its measurements with it (windows). `cost` orders the children of `all`/`any`: cheap
checks (traits, `last_seen`) short-circuit before event window sums.
"""

import hashlib
import json
import math
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cohortcast.clock import epoch_day
from cohortcast.errors import Unprocessable
from cohortcast.profiles.behaviour import epoch_hour
from cohortcast.profiles.model import ProfileView
from cohortcast.segments.durations import DAY, day_start, hour_start, moment_of, parse_bound, parse_duration
from cohortcast.segments.engine import windows
from cohortcast.segments.engine.codegen import Clock, Code
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

ValueTest = Callable[[Any], bool]
_ONE_MICROSECOND = timedelta(microseconds=1)
# Comparison ops: their source operator and the same comparison as a function (for next-flip).
_COMPARE = {
    "eq": ("==", operator.eq),
    "ne": ("!=", operator.ne),
    "lt": ("<", operator.lt),
    "lte": ("<=", operator.le),
    "gt": (">", operator.gt),
    "gte": (">=", operator.ge),
}


@dataclass(frozen=True, slots=True)
class CounterSpec:
    """A filtered event counter the ingest path keeps in `profile.counters[counter_id]`."""

    counter_id: str
    event: str
    matches_properties: Callable[[dict[str, Any]], bool]


# --- values: traits and event properties -------------------------------------------------------


def walk(data: Any, keys: tuple[str, ...]) -> Any:
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
    compare = _COMPARE[op][1]
    return lambda actual: (type(actual) is int or type(actual) is float) and compare(actual, limit)


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


def _value_source(code: Code, read: str, op: str, value: Any) -> str:
    """A value test as one expression over `read`: inline for the common ops, else `value_test`."""
    actual = code.name()
    if op == "eq" and type(value) is str:
        return f"({read} == {code.constant(value)})"
    if op == "in" and all(type(item) is str for item in value):
        return f"(type({actual} := {read}) is str and {actual} in {code.constant(frozenset(value))})"
    if op in ("lt", "lte", "gt", "gte"):
        kind = code.name()
        return (
            f"((({kind} := type({actual} := {read})) is int or {kind} is float) "
            f"and {actual} {_COMPARE[op][0]} {code.constant(value)})"
        )
    if op == "exists":
        return f"({read} is not None)"
    if op == "not_exists":
        return f"({read} is None)"
    return f"{code.constant(value_test(op, value))}({read})"


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
    return lambda props: test(walk(props, keys))


def counter_id(event: str, where: Any) -> str:
    """Stable id of an (event, where) counter: a short hash of its canonical JSON."""
    canonical = json.dumps(
        {"event": event, "where": where.as_json()}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return "c_" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _relative_source(code: Code, op: str, moment: str, cutoff: int, now: int) -> str:
    """within_last: cutoff <= moment <= now; more_than_ago: moment < cutoff (cutoff = now - span)."""
    m, b = code.name(), code.bounds
    if op == "within_last":
        return f"(({m} := {moment}) is not None and {b}[{cutoff}] <= {m} <= {b}[{now}])"
    return f"(({m} := {moment}) is not None and {m} < {b}[{cutoff}])"


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


# --- nodes ------------------------------------------------------------------------------------

Value = Callable[["Node"], bool]  # a node's answer for the profile at hand (explain, next-flip)


class Node:
    """One rule node. `source` is its value as a parenthesised Python expression (the only
    definition of how it evaluates); `detail`, `too_new` and `flip` are what explain and
    next-flip add to it."""

    cost = 20
    time_dependent = False

    def __init__(self, node: Any) -> None:
        self.node = node

    def source(self, code: Code) -> str:
        raise NotImplementedError

    def statements(self, code: Code) -> list[str]:
        """Lines that `return False` when the node is false and fall through when it is true."""
        return [f"if not {self.source(code)}:", "    return False"]

    def children(self) -> list["Node"]:
        return []

    def detail(self, profile: ProfileView, now: datetime) -> dict[str, Any]:
        return {}

    def too_new(self, profile: ProfileView, now: datetime) -> bool:
        return False

    def flip(self, profile: ProfileView, now: datetime, value: Value) -> datetime | None:
        """Earliest moment after `now` this node's answer could change with no new data."""
        return None

    def counters(self) -> Iterator[CounterSpec]:
        for child in self.children():
            yield from child.counters()


class Logic(Node):
    def __init__(self, node: AllOf | AnyOf, children: list[Node]) -> None:
        super().__init__(node)
        self._children, self.is_all = children, isinstance(node, AllOf)
        self.time_dependent = any(child.time_dependent for child in children)
        self.cost = sum(child.cost for child in children)

    def children(self) -> list[Node]:
        return self._children

    def _cheapest_first(self) -> list[Node]:
        # Children are pure, so any order gives the same answer: cheap checks short-circuit first.
        return sorted(self._children, key=lambda child: child.cost)

    def source(self, code: Code) -> str:
        joiner = " and " if self.is_all else " or "
        return "(" + joiner.join(child.source(code) for child in self._cheapest_first()) + ")"

    def statements(self, code: Code) -> list[str]:
        if not self.is_all:
            return super().statements(code)
        return [line for child in self._cheapest_first() for line in child.statements(code)]

    def flip(self, profile: ProfileView, now: datetime, value: Value) -> datetime | None:
        # A true `all` (false `any`) changes when any child does; a false `all` stays false until
        # every false child can have flipped (a true `any` likewise with its true children).
        if value(self) == self.is_all:
            flips = [f for child in self._children if (f := child.flip(profile, now, value)) is not None]
            return min(flips, default=None)
        deciding = [child for child in self._children if value(child) != self.is_all]
        flips = [child.flip(profile, now, value) for child in deciding]
        return None if None in flips else max(flips)  # type: ignore[type-var]


class Not(Node):
    def __init__(self, node: NotNode, child: Node) -> None:
        super().__init__(node)
        self.child, self.time_dependent, self.cost = child, child.time_dependent, child.cost

    def children(self) -> list[Node]:
        return [self.child]

    def source(self, code: Code) -> str:
        return f"(not {self.child.source(code)})"

    def flip(self, profile: ProfileView, now: datetime, value: Value) -> datetime | None:
        return self.child.flip(profile, now, value)


class Trait(Node):
    def __init__(self, node: TraitCondition, clock: Clock) -> None:
        super().__init__(node)
        self.keys = tuple(node.trait.split("."))
        if node.op in ("within_last", "more_than_ago"):
            self.time_dependent, self.span = True, parse_duration(node.value)
            self.slots = clock.cutoff(self.span), clock.now()
        else:
            self.cost = len(self.keys)

    def _read(self, code: Code) -> str:
        keys = self.keys
        if len(keys) == 1:
            return f"{code.traits}.get({code.constant(keys[0])})"
        if len(keys) == 2:
            parent = code.name()
            return (
                f"({parent}.get({code.constant(keys[1])}) "
                f"if type({parent} := {code.traits}.get({code.constant(keys[0])})) is dict else None)"
            )
        return f"{code.constant(walk)}({code.traits}, {code.constant(keys)})"

    def source(self, code: Code) -> str:
        if self.time_dependent:
            moment = f"{code.constant(moment_of)}({self._read(code)})"
            return _relative_source(code, self.node.op, moment, *self.slots)
        return _value_source(code, self._read(code), self.node.op, self.node.value)

    def _value(self, profile: ProfileView) -> Any:
        return walk(profile.traits, self.keys)

    def detail(self, profile: ProfileView, now: datetime) -> dict[str, Any]:
        return {"trait": self.node.trait, "actual": self._value(profile)}

    def flip(self, profile: ProfileView, now: datetime, value: Value) -> datetime | None:
        if not self.time_dependent:
            return None
        return _relative_flip(self.node.op, moment_of(self._value(profile)), self.span, now)


class Seen(Node):
    """last_seen / first_seen conditions; datetimes straight from the profile."""

    def __init__(self, node: LastSeen | FirstSeen, clock: Clock) -> None:
        super().__init__(node)
        self.field = "last_seen" if isinstance(node, LastSeen) else "first_seen"
        self.op, value = getattr(node, self.field).op
        if self.op in ("within_last", "more_than_ago"):
            self.time_dependent, self.span, self.cost = True, parse_duration(value), 1
            self.slots = clock.cutoff(self.span), clock.now()
        else:
            self.in_range = _moment_range(self.op, value)

    def source(self, code: Code) -> str:
        moment = f"profile.{self.field}"
        if self.time_dependent:
            return _relative_source(code, self.op, moment, *self.slots)
        m = code.name()
        return f"(({m} := {moment}) is not None and {code.constant(self.in_range)}({m}))"

    def detail(self, profile: ProfileView, now: datetime) -> dict[str, Any]:
        moment = getattr(profile, self.field)
        return {self.field: moment.isoformat() if moment else None}

    def flip(self, profile: ProfileView, now: datetime, value: Value) -> datetime | None:
        if not self.time_dependent:
            return None
        return _relative_flip(self.op, getattr(profile, self.field), self.span, now)


class Windowed(Node):
    """A behaviour node over a trailing window, with the tenure guard for absence conditions.

    Subclasses set `span` (how far back the node looks) and define `measure_source`,
    `measure_detail` and `measure_flip`; the guard is added here, once.
    """

    time_dependent = True
    span: timedelta

    def _guard(self, clock: Clock, guarded: bool, negated: bool) -> None:
        # Under a `not`, the node's false is the literal's true: "too new" makes the literal false.
        self.guarded, self.too_new_value = guarded, negated
        if guarded:
            self.guard_slot = clock.cutoff(self.span)

    def measure_source(self, code: Code) -> str:
        raise NotImplementedError

    def source(self, code: Code) -> str:
        measure = self.measure_source(code)
        if not self.guarded:
            return measure
        first_seen, b = code.name(), code.bounds
        return (
            f"({measure} if ({first_seen} := profile.first_seen) is not None "
            f"and {first_seen} <= {b}[{self.guard_slot}] else {self.too_new_value!r})"
        )

    def too_new(self, profile: ProfileView, now: datetime) -> bool:
        return profile.first_seen is None or profile.first_seen > now - self.span

    def detail(self, profile: ProfileView, now: datetime) -> dict[str, Any]:
        return self.measure_detail(profile, now) | {"require_full_window": self.guarded}

    def measure_detail(self, profile: ProfileView, now: datetime) -> dict[str, Any]:
        raise NotImplementedError

    def flip(self, profile: ProfileView, now: datetime, value: Value) -> datetime | None:
        flips = [self.measure_flip(profile, now)]
        if self.guarded and profile.first_seen is not None and now < profile.first_seen + self.span:
            flips.append(profile.first_seen + self.span)
        return min((f for f in flips if f is not None), default=None)

    def measure_flip(self, profile: ProfileView, now: datetime) -> datetime | None:
        raise NotImplementedError


class _Buckets(Windowed):
    """An event's hour buckets: the event's own, or its filtered counter (`where`)."""

    def _source_of(self, event: str, where: Any) -> None:
        if where is None:
            self.counter, self.field, self.key = None, "hourly", event
        else:
            spec = CounterSpec(counter_id(event, where), event, _property_test(where))
            self.counter, self.field, self.key = spec, "counters", spec.counter_id

    def read(self, profile: ProfileView) -> dict[int, int] | None:
        return getattr(profile, self.field).get(self.key)

    def read_source(self, code: Code) -> str:
        return f"profile.{self.field}.get({code.constant(self.key)})"

    def counters(self) -> Iterator[CounterSpec]:
        return iter([self.counter] if self.counter else [])


def _holds(comparison: Comparison) -> tuple[str, int, Callable[[int], bool]]:
    """A count comparison: its op, its number and the test of a measured count."""
    op, number = comparison.op
    compare = _COMPARE[op][1]
    return op, number, lambda n: compare(n, number)


class Count(_Buckets):
    cost = 10

    def __init__(self, node: EventCount, clock: Clock, guarded: bool, negated: bool) -> None:
        super().__init__(node)
        self.span = parse_duration(node.within)
        self._source_of(node.event, node.where)
        self.op, self.number, self.holds = _holds(node.count)
        self.slot = clock.start_hour(self.span)
        self._guard(clock, guarded, negated)

    def measure_source(self, code: Code) -> str:
        total, start = code.constant(windows.window_total), f"{code.bounds}[{self.slot}]"
        if self.op in ("gte", "gt"):
            # "At least N" stops counting once N is reached (the commonest behaviour condition).
            least = self.number + (self.op == "gt")
            if least <= 0:
                return "True"
            least_name = code.constant(least)
            return f"({total}({self.read_source(code)}, {start}, {least_name}) >= {least_name})"
        compare = _COMPARE[self.op][0]
        return f"({total}({self.read_source(code)}, {start}) {compare} {code.constant(self.number)})"

    def measure_detail(self, profile: ProfileView, now: datetime) -> dict[str, Any]:
        start = epoch_hour(now - self.span)
        detail = {"count": windows.window_total(self.read(profile), start), "from_hour": _from_hour(start)}
        return detail | ({"counter_id": self.counter.counter_id} if self.counter else {})

    def measure_flip(self, profile: ProfileView, now: datetime) -> datetime | None:
        hours, start = self.read(profile) or {}, epoch_hour(now - self.span)
        leaving = windows.bucket_leave_times(hours, start, self.span)
        return windows.first_change(leaving, windows.window_total(hours, start), self.holds)


def _from_hour(hour: int) -> str:
    return hour_start(hour).isoformat().replace("+00:00", "Z")


class Trend(_Buckets):
    cost = 30

    def __init__(self, node: EventTrend, clock: Clock, guarded: bool, negated: bool) -> None:
        super().__init__(node)
        self.days = parse_duration(node.trend.window) // DAY
        self.span = 2 * self.days * DAY
        self._source_of(node.event, node.where)
        self.today = clock.today()
        self._guard(clock, guarded, negated)

    def holds(self, change: float) -> bool:
        lte, gte = self.node.trend.change_lte, self.node.trend.change_gte
        return (lte is None or change <= lte) and (gte is None or change >= gte)

    def change(self, hours: dict[int, int] | None, today: int) -> float:
        return windows.trend_change(*windows.trend_totals(hours, today, self.days))

    def measure_source(self, code: Code) -> str:
        change = f"{code.constant(self.change)}({self.read_source(code)}, {code.bounds}[{self.today}])"
        return f"{code.constant(self.holds)}({change})"

    def measure_detail(self, profile: ProfileView, now: datetime) -> dict[str, Any]:
        current, previous = windows.trend_totals(self.read(profile), epoch_day(now), self.days)
        change = windows.trend_change(current, previous)
        return {"current": current, "previous": previous, "change": None if math.isinf(change) else change}

    def measure_flip(self, profile: ProfileView, now: datetime) -> datetime | None:
        today = epoch_day(now)
        # Both windows slide at UTC midnight; with no events in them, nothing moves.
        oldest = today - 2 * self.days + 1
        active = any(count for hour, count in (self.read(profile) or {}).items() if hour // 24 >= oldest)
        return day_start(today + 1) if active else None


class _Distinct(Windowed):
    """A count of distinct things (UTC days, event names) in the window, each leaving the window
    with the last hour it holds an event in."""

    def __init__(self, node: Any, comparison: Comparison, clock: Clock, guarded: bool, negated: bool) -> None:
        super().__init__(node)
        self.span = parse_duration(node.within)
        self.op, self.number, self.holds = _holds(comparison)
        self.slot = clock.start_hour(self.span)
        self._guard(clock, guarded, negated)

    def last_hours(self, hourly: dict[str, dict[int, int]], start: int) -> dict[Any, int]:
        raise NotImplementedError

    def measure_source(self, code: Code) -> str:
        things = f"{code.constant(self.last_hours)}(profile.hourly, {code.bounds}[{self.slot}])"
        return f"({code.constant(len)}({things}) {_COMPARE[self.op][0]} {code.constant(self.number)})"

    def measure_flip(self, profile: ProfileView, now: datetime) -> datetime | None:
        last = self.last_hours(profile.hourly, epoch_hour(now - self.span))
        return windows.first_change(
            windows.leave_times(list(last.values()), self.span), len(last), self.holds
        )


class ActiveDayCount(_Distinct):
    cost = 40

    def __init__(self, node: ActiveDays, clock: Clock, guarded: bool, negated: bool) -> None:
        super().__init__(node, node.active_days, clock, guarded, negated)

    def last_hours(self, hourly: dict[str, dict[int, int]], start: int) -> dict[Any, int]:
        return windows.active_days(hourly, start)

    def measure_detail(self, profile: ProfileView, now: datetime) -> dict[str, Any]:
        return {"active_days": len(windows.active_days(profile.hourly, epoch_hour(now - self.span)))}


class DistinctEventCount(_Distinct):
    cost = 40

    def __init__(self, node: DistinctEvents, clock: Clock, guarded: bool, negated: bool) -> None:
        super().__init__(node, node.distinct_events, clock, guarded, negated)

    def last_hours(self, hourly: dict[str, dict[int, int]], start: int) -> dict[Any, int]:
        return windows.distinct_events(hourly, start, self.node.prefix)

    def measure_detail(self, profile: ProfileView, now: datetime) -> dict[str, Any]:
        return {"events": sorted(self.last_hours(profile.hourly, epoch_hour(now - self.span)))}


class GuardedLastSeen(Windowed):
    """last_seen more_than_ago (or within_last under a `not`): "not seen for N days"."""

    cost = 2

    def __init__(self, node: LastSeen, clock: Clock, negated: bool) -> None:
        super().__init__(node)
        self.seen = Seen(node, clock)
        self.span = self.seen.span
        self._guard(clock, True, negated)

    def measure_source(self, code: Code) -> str:
        return self.seen.source(code)

    def measure_detail(self, profile: ProfileView, now: datetime) -> dict[str, Any]:
        return self.seen.detail(profile, now)

    def measure_flip(self, profile: ProfileView, now: datetime) -> datetime | None:
        return self.seen.flip(profile, now, lambda node: False)


class StaticSegment(Node):
    cost = 1

    def source(self, code: Code) -> str:
        return f"({code.constant(self.node.segment)} in profile.segments)"

    def detail(self, profile: ProfileView, now: datetime) -> dict[str, Any]:
        return {"segment": self.node.segment, "dynamic": False}


class DynamicSegment(Node):
    """A dynamic segment's rule, inlined: same value and flip as its rule; explain shows it below."""

    def __init__(self, node: SegmentRef, child: Node) -> None:
        super().__init__(node)
        self.child, self.time_dependent, self.cost = child, child.time_dependent, child.cost

    def children(self) -> list[Node]:
        return [self.child]

    def source(self, code: Code) -> str:
        return self.child.source(code)

    def statements(self, code: Code) -> list[str]:
        return self.child.statements(code)

    def detail(self, profile: ProfileView, now: datetime) -> dict[str, Any]:
        return {"segment": self.node.segment, "dynamic": True}

    def flip(self, profile: ProfileView, now: datetime, value: Value) -> datetime | None:
        return self.child.flip(profile, now, value)


# --- from a validated rule to nodes -------------------------------------------------------------


def _default_guard(absence: bool | None, negated: bool) -> bool:
    """Guard absence literals by default; under a `not`, "at least" becomes absence."""
    return absence is not None and absence != negated


class Builder:
    """Turns a validated rule tree into nodes, deciding each tenure guard and inlining segments."""

    def __init__(self, segment_rule: Callable[[str], Rule | None]) -> None:
        self.segment_rule, self.clock, self.open_segments = segment_rule, Clock(), []

    def build(self, node: Any, negated: bool) -> Node:
        if isinstance(node, AllOf | AnyOf):
            return Logic(node, [self.build(child, negated) for child in node.nodes])
        if isinstance(node, NotNode):
            return Not(node, self.build(node.node, not negated))
        if isinstance(node, TraitCondition):
            return Trait(node, self.clock)
        if isinstance(node, FirstSeen):
            return Seen(node, self.clock)
        if isinstance(node, LastSeen):
            return self._last_seen(node, negated)
        if isinstance(node, SegmentRef):
            return self._segment(node, negated)
        return self._behaviour(node, negated)

    def _behaviour(self, node: Any, negated: bool) -> Node:
        if isinstance(node, EventTrend):
            # A trend is meaningless either way over a half-observed previous window.
            return Trend(node, self.clock, node.require_full_window is not False, negated)
        comparison = {EventCount: "count", ActiveDays: "active_days", DistinctEvents: "distinct_events"}
        absence = getattr(node, comparison[type(node)]).is_absence
        guarded = node.require_full_window
        guarded = _default_guard(absence, negated) if guarded is None else guarded
        kind = {EventCount: Count, ActiveDays: ActiveDayCount, DistinctEvents: DistinctEventCount}[type(node)]
        return kind(node, self.clock, guarded, negated)

    def _last_seen(self, node: LastSeen, negated: bool) -> Node:
        absence = {"more_than_ago": True, "within_last": False}.get(node.last_seen.op[0])
        guarded = node.require_full_window
        guarded = _default_guard(absence, negated) if guarded is None else guarded
        return GuardedLastSeen(node, self.clock, negated) if guarded else Seen(node, self.clock)

    def _segment(self, node: SegmentRef, negated: bool) -> Node:
        rule = self.segment_rule(node.segment)
        if rule is None:
            return StaticSegment(node)
        if node.segment in self.open_segments:
            cycle = " -> ".join([*self.open_segments, node.segment])
            raise Unprocessable(f"segment reference cycle: {cycle}", [{"pointer": "", "message": cycle}])
        self.open_segments.append(node.segment)
        try:
            return DynamicSegment(node, self.build(rule.root, negated))
        finally:
            self.open_segments.pop()
