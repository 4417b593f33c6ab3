"""Segment definitions with their compiled rules, cached per container for a short while.

One `Query pk=SEGMENTS` every CACHE_SECONDS per container: evaluate, backfill, the API and
ingest (for filtered counters) all read definitions through here.
"""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cohortcast.cache import TTLCache
from cohortcast.errors import CohortcastError
from cohortcast.storage import segments as segment_store
from cohortcast.storage.segments import SegmentDefinition
from cohortcast.workspace import service as workspace

if TYPE_CHECKING:  # the rule engine is imported only when a rule must be compiled
    from cohortcast.segments.engine import CompiledRule, CounterSpec
    from cohortcast.segments.rules import Rule

CACHE_SECONDS = 30.0


@dataclass(slots=True)
class Registry:
    definitions: dict[str, SegmentDefinition]
    rules: dict[str, "Rule"] = field(default_factory=dict)
    compiled: dict[str, "CompiledRule"] = field(default_factory=dict)  # dynamic segments only
    broken: dict[str, str] = field(default_factory=dict)  # stored rules that no longer compile
    _specs: list["CounterSpec"] | None = None

    def rule_of(self, segment_id: str) -> "Rule | None":
        """A dynamic segment's rule; None for static or unknown segments (compile_rule's lookup)."""
        return self.rules.get(segment_id)

    def counter_specs(self) -> list["CounterSpec"]:
        """Filtered counters every dynamic rule needs (ingest increments them)."""
        if self._specs is None:
            specs: dict[str, CounterSpec] = {}
            for compiled in self.compiled.values():
                for spec in compiled.counter_specs():
                    specs[spec.counter_id] = spec
            self._specs = list(specs.values())
        return self._specs

    @property
    def time_dependent(self) -> dict[str, "CompiledRule"]:
        return {sid: c for sid, c in self.compiled.items() if c.is_time_dependent}


def build(definitions: list[SegmentDefinition]) -> Registry:
    registry = Registry(definitions={d.segment_id: d for d in definitions})
    dynamic = [d for d in definitions if d.kind == "dynamic" and d.rule is not None]
    if not dynamic:
        return registry
    from cohortcast.segments.engine import compile_rule  # lazy: the rule engine loads only to compile a rule
    from cohortcast.segments.rules import parse_rule  # lazy: the rule models too (ingest's cold start)

    max_days = workspace.retention_days()
    for d in dynamic:
        try:
            registry.rules[d.segment_id] = parse_rule(d.rule, max_window_days=max_days)
        except CohortcastError as err:
            registry.broken[d.segment_id] = err.message
    for segment_id, rule in list(registry.rules.items()):
        try:
            registry.compiled[segment_id] = compile_rule(rule, segment_rule=registry.rule_of)
        except CohortcastError as err:
            registry.broken[segment_id] = err.message
    return registry


_cache: TTLCache[str, Registry] = TTLCache(CACHE_SECONDS, max_entries=1)


def get_registry() -> Registry:
    return _cache.get_or_load("registry", lambda: build(segment_store.list_definitions()))


def invalidate() -> None:
    """Forget the cache (after this container changed a definition, and between tests)."""
    _cache.clear()
