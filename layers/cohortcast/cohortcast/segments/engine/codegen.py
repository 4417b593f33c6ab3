"""The one code generator: a rule (or one node of it) becomes a Python function.

Nodes emit their own source (`Node.source`, `Node.statements`); this module assembles it into a
function and runs it without builtins. Every value from the rule is passed to the function as a
constant looked up by a generated name (`_k0`, `_k1`, ...), never pasted into the source, and locals
are `_v1`, `_v2`, ... (tests/unit/segments/test_generated_source.py holds that line).

`now`-derived values (window start hours, cut-off moments) sit in a bounds list `b`, one slot each
(`Clock`), computed once per distinct `now`, so a sweep over many profiles at one `now` pays for
them once.
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from cohortcast.clock import epoch_day
from cohortcast.profiles.behaviour import epoch_hour

Bounds = list[Any]
_BUILTINS = {"__builtins__": {}, "type": type, "int": int, "float": float, "str": str, "dict": dict}


class Clock:
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


class Emitter(Protocol):
    """What the generator needs of a node (nodes.Node): its source, as an expression or as lines."""

    def source(self, code: "Code") -> str: ...

    def statements(self, code: "Code") -> list[str]: ...


class Code:
    """The pieces of one generated function: constants passed by name, fresh local names."""

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


def _define(code: Code, signature: str, body: list[str], names: dict[str, Any]) -> tuple[Any, str]:
    if code.uses_traits:
        body = ["traits = profile.traits", *body]
    source = f"def {signature}:\n" + "".join(f"    {line}\n" for line in body)
    namespace = {**code.namespace, **names, **_BUILTINS}
    exec(compile(source, "<compiled rule>", "exec"), namespace)  # our own source: no rule text in it
    return namespace[signature.split("(")[0]], source


def generate_matches(
    root: Emitter, state: list[Any], refresh: Callable[[datetime], None]
) -> tuple[Callable[[Any, datetime], bool], str]:
    """`matches(profile, now)` for the whole rule: no call per node, locals instead of closure cells."""
    code = Code()
    body = [*root.statements(code), "return True"]
    if code.uses_bounds:  # window bounds are derived once per distinct `now` (a sweep shares one)
        body = ["if now is not state[0]:", "    refresh(now)", "b = state[1]", *body]
    return _define(code, "matches(profile, now)", body, {"state": state, "refresh": refresh})


def generate_test(node: Emitter) -> Callable[[Any, Bounds], bool]:
    """`test(profile, b)`: one node's value from the same source, for explain and next-flip."""
    code = Code()
    return _define(code, "test(profile, b)", [f"return {node.source(code)}"], {})[0]
