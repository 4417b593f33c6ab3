"""An inline rule (an announcement's `audience.rule`) evaluated on one profile at a time: by the
publish snapshot (email, push, SMS) and by the in-app feed when the user opens it."""

from datetime import datetime
from typing import Any

from cohortcast.profiles.record import view as profile_view
from cohortcast.segments import counters
from cohortcast.segments.engine import compile_rule
from cohortcast.segments.registry import get_registry
from cohortcast.segments.rules import parse_rule, referenced_segments
from cohortcast.storage.profiles import ProfileRecord


class InlineRule:
    def __init__(self, raw: dict[str, Any]) -> None:
        rule = parse_rule(raw)
        self._compiled = compile_rule(rule, segment_rule=get_registry().rule_of)
        self._specs = self._compiled.counter_specs()
        self.references_segments = bool(referenced_segments(rule))

    def matches(
        self, record: ProfileRecord, member_of: frozenset[str], now: datetime, retention_days: int
    ) -> bool:
        # No profile keeps counters for an inline rule's `where` nodes: count them from raw events.
        counters.with_counts_from_events(record, self._specs, now, retention_days)
        return bool(self._compiled.matches(profile_view(record, member_of), now))
