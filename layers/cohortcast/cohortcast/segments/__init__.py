"""Segment rules: validation (`parse_rule`), compilation (`compile_rule`) and templates."""

from cohortcast.segments.compiler import CompiledRule, CounterSpec, compile_rule
from cohortcast.segments.rules import Rule, find_cycle, parse_rule, referenced_segments
from cohortcast.segments.templates import TEMPLATES, SegmentTemplate, instantiate

__all__ = [
    "TEMPLATES",
    "CompiledRule",
    "CounterSpec",
    "Rule",
    "SegmentTemplate",
    "compile_rule",
    "find_cycle",
    "instantiate",
    "parse_rule",
    "referenced_segments",
]
