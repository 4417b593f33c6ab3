"""A compiled rule: the generated `matches` for the hot path, explain and next-flip over its nodes."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from cohortcast.profiles.model import ProfileView
from cohortcast.segments.engine import codegen
from cohortcast.segments.engine.codegen import Bounds, Clock
from cohortcast.segments.engine.explain import explain
from cohortcast.segments.engine.nodes import Builder, CounterSpec, Node, Value
from cohortcast.segments.rules import Rule


class CompiledRule:
    """A rule ready to evaluate: `matches(profile, now)` is the hot path (one generated function);
    `explain` and `next_flip` walk the nodes, asking each node's value of its own generated test."""

    matches: Callable[[ProfileView, datetime], bool]

    def __init__(self, root: Node, clock: Clock) -> None:
        self._root, self._clock = root, clock
        self._state: list[Any] = [None, []]  # [now, bounds at that now]
        self._tests: dict[Node, Callable[[ProfileView, Bounds], bool]] = {}
        self.matches, self.source = codegen.generate_matches(root, self._state, self._refresh)

    def _refresh(self, now: datetime) -> None:
        self._state[1] = self._clock.bounds(now)
        self._state[0] = now

    def _value(self, profile: ProfileView, now: datetime) -> Value:
        # A sweep evaluates many profiles at one `now`: derive window bounds once.
        if now is not self._state[0]:
            self._refresh(now)
        bounds = self._state[1]

        def value(node: Node) -> bool:
            test = self._tests.get(node)
            if test is None:  # generated on first use: most rules are never explained
                test = self._tests[node] = codegen.generate_test(node)
            return test(profile, bounds)

        return value

    def explain(self, profile: ProfileView, now: datetime) -> dict[str, Any]:
        return explain(self._root, profile, now, self._value(profile, now))

    def next_flip(self, profile: ProfileView, now: datetime) -> datetime | None:
        """Earliest moment after `now` the answer could change with no new data; None if never."""
        return self._root.flip(profile, now, self._value(profile, now))

    def counter_specs(self) -> list[CounterSpec]:
        return list({spec.counter_id: spec for spec in self._root.counters()}.values())

    @property
    def is_time_dependent(self) -> bool:
        return self._root.time_dependent


def compile_rule(rule: Rule, *, segment_rule: Callable[[str], Rule | None]) -> CompiledRule:
    """Compile once; `segment_rule(id)` gives a referenced dynamic segment's rule, None if static."""
    builder = Builder(segment_rule)
    root = builder.build(rule.root, negated=False)
    return CompiledRule(root, builder.clock)
