"""The EventBridge event-pattern subset that Lambda event-source FilterCriteria use."""

from __future__ import annotations

import json
from typing import Any

_MISSING = object()


def matches_any(filters: list[dict[str, Any]] | None, record: dict[str, Any]) -> bool:
    """FilterCriteria semantics: no filters passes everything, else any one pattern must match."""
    if not filters:
        return True
    return any(
        matches(json.loads(f["Pattern"]) if isinstance(f["Pattern"], str) else f["Pattern"], record)
        for f in filters
    )


def matches(pattern: dict[str, Any], record: Any) -> bool:
    if not isinstance(pattern, dict):
        raise ValueError("an event pattern is a JSON object")
    for key, expected in pattern.items():
        if key == "$or":
            if not any(matches(p, record) for p in expected):
                return False
            continue
        value = record.get(key, _MISSING) if isinstance(record, dict) else _MISSING
        if isinstance(expected, dict):
            if value is _MISSING or not matches(expected, value):
                return False
        elif isinstance(expected, list):
            if not _field_matches(expected, value):
                return False
        else:
            raise ValueError(f"pattern values must be objects or arrays, got {expected!r} for {key}")
    return True


def _field_matches(options: list[Any], value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    return any(_option_matches(option, v, value is _MISSING) for option in options for v in values)


def _option_matches(option: Any, value: Any, missing: bool) -> bool:
    if not isinstance(option, dict):
        return not missing and value == option
    ((operator, argument),) = option.items()
    if operator == "exists":
        return bool(argument) != missing
    if missing:
        return False  # every other operator needs the field to be present, as in EventBridge
    if operator == "prefix":
        return isinstance(value, str) and _text_match(value, argument, str.startswith)
    if operator == "suffix":
        return isinstance(value, str) and _text_match(value, argument, str.endswith)
    if operator == "equals-ignore-case":
        return isinstance(value, str) and value.lower() == str(argument).lower()
    if operator == "anything-but":
        if isinstance(argument, dict):
            return not _option_matches(argument, value, missing)
        excluded = argument if isinstance(argument, list) else [argument]
        return value not in excluded
    if operator == "numeric":
        return _numeric(value, argument)
    raise ValueError(f"unsupported filter operator {operator}")


def _text_match(value: str, argument: Any, test: Any) -> bool:
    if isinstance(argument, dict) and "equals-ignore-case" in argument:
        return test(value.lower(), str(argument["equals-ignore-case"]).lower())
    return test(value, str(argument))


def _numeric(value: Any, conditions: list[Any]) -> bool:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    checks = {
        "<": number.__lt__,
        "<=": number.__le__,
        "=": number.__eq__,
        ">": number.__gt__,
        ">=": number.__ge__,
    }
    pairs = zip(conditions[::2], conditions[1::2], strict=True)
    return all(checks[op](float(limit)) for op, limit in pairs)
