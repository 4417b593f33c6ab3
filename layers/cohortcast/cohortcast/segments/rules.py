"""The segment rule language (SPEC §4) as pydantic models, and the one entry point `parse_rule`.

A rule is a JSON tree; each node is told apart by its keys (`all`, `trait`, `event`, ...),
so validation errors point at the offending node with a JSON pointer into what was submitted.
"""

import math
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    RootModel,
    StrictBool,
    StrictInt,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from cohortcast.errors import Unprocessable
from cohortcast.segments.durations import parse_bound, parse_duration

DEFAULT_MAX_WINDOW_DAYS = 90
MAX_DEPTH = 8
MAX_NODES = 200
MAX_LIST_ITEMS = 500
MAX_STRING = 512
# Relative date conditions on traits (e.g. signed up within 10 years) are not bound by event retention.
_MAX_DATE_DURATION = timedelta(days=36_500)

TraitOp = Literal[
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
# Counters are computed once per event at ingestion, when there is no `now` to be relative to.
PropertyOp = Literal[
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
    "between",
]
CountOp = Literal["eq", "ne", "lt", "lte", "gt", "gte"]
COUNT_OPS: tuple[CountOp, ...] = ("eq", "ne", "lt", "lte", "gt", "gte")


def _error(message: str) -> PydanticCustomError:
    return PydanticCustomError("rule", message)


def _max_window_days(info: ValidationInfo) -> int:
    context = info.context or {}
    return int(context.get("max_window_days", DEFAULT_MAX_WINDOW_DAYS))


def _check_duration(text: str) -> str:
    try:
        duration = parse_duration(text)
    except ValueError as exc:
        raise _error(str(exc)) from None
    if duration > _MAX_DATE_DURATION:
        raise _error("a duration may not exceed 36500d")
    return text


def _check_event_window(text: str, info: ValidationInfo) -> str:
    try:
        duration = parse_duration(text)
    except ValueError as exc:
        raise _error(str(exc)) from None
    if duration % timedelta(hours=1):
        # Behaviour is counted in UTC hour buckets: a window that is not whole hours could not
        # be honoured ("30m" would silently mean up to 90 minutes).
        raise _error(
            "windows over events are whole hours, like '1h', '36h' or '7d' (events are counted per hour)"
        )
    limit = _max_window_days(info)
    if duration > timedelta(days=limit):
        raise _error(f"windows over events may not exceed the {limit}-day raw-event retention")
    return text


def _check_trend_window(text: str, info: ValidationInfo) -> str:
    try:
        duration = parse_duration(text)
    except ValueError as exc:
        raise _error(str(exc)) from None
    if duration % timedelta(days=1):
        raise _error("a trend window is a whole number of days, like '30d'")
    limit = _max_window_days(info)
    if duration * 2 > timedelta(days=limit):
        raise _error(f"a trend compares two windows, which together may not exceed the {limit}-day retention")
    return text


def _check_bound(text: str) -> str:
    try:
        parse_bound(text)
    except (ValueError, TypeError):
        raise _error("a date is an ISO-8601 string like '2026-11-01' or '2026-11-01T09:00:00Z'") from None
    return text


Duration = Annotated[str, AfterValidator(_check_duration)]
EventWindow = Annotated[str, AfterValidator(_check_event_window)]
TrendWindow = Annotated[str, AfterValidator(_check_trend_window)]
DateBound = Annotated[str, AfterValidator(_check_bound)]
Name = Annotated[str, Field(min_length=1, max_length=200, strict=True)]
Path = Annotated[str, Field(min_length=1, max_length=256, strict=True, pattern=r"^[^.]+(\.[^.]+){0,9}$")]
Count = Annotated[StrictInt, Field(ge=0, le=1_000_000_000)]


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# --- conditions on values (traits and event properties) -------------------------------------


def _is_scalar(value: Any) -> bool:
    return type(value) in (str, int, float, bool) and (type(value) is not float or math.isfinite(value))


def _check_scalar(value: Any) -> None:
    if not _is_scalar(value):
        raise _error("value must be a string, number or boolean")
    if type(value) is str and len(value) > MAX_STRING:
        raise _error(f"strings may be at most {MAX_STRING} characters")


def _check_value(op: str, value: Any) -> None:
    if op in ("exists", "not_exists"):
        if value is not None:
            raise _error(f"op '{op}' takes no value")
        return
    if value is None:
        raise _error(f"op '{op}' needs a value")
    if op in ("eq", "ne", "contains", "not_contains"):
        _check_scalar(value)
    elif op in ("lt", "lte", "gt", "gte"):
        if type(value) not in (int, float) or not math.isfinite(value):
            raise _error(f"op '{op}' compares numbers: value must be a number")
    elif op in ("in", "not_in"):
        if type(value) is not list or not 1 <= len(value) <= MAX_LIST_ITEMS:
            raise _error(f"op '{op}' needs a list of 1 to {MAX_LIST_ITEMS} values")
        for item in value:
            _check_scalar(item)
    elif op in ("starts_with", "ends_with"):
        if type(value) is not str or not 1 <= len(value) <= MAX_STRING:
            raise _error(f"op '{op}' needs a non-empty string")
    elif op in ("before", "after"):
        _check_bound(value)
    elif op in ("within_last", "more_than_ago"):
        _check_duration(value)
    elif op == "between":
        _check_between(value)


def _check_between(value: Any) -> None:
    if type(value) is not list or len(value) != 2:
        raise _error("op 'between' needs [from, to]")
    start, _ = parse_bound(_check_bound(value[0]))
    end, _ = parse_bound(_check_bound(value[1]))
    if end < start:
        raise _error("'between' needs from <= to")


class _ValueCondition(_Node):
    """Shared by trait and property conditions: the value must fit the op."""

    @field_validator("value", check_fields=False)
    @classmethod
    def _value_fits_op(cls, value: Any, info: ValidationInfo) -> Any:
        if "op" in info.data:
            _check_value(info.data["op"], value)
        return value


class TraitCondition(_ValueCondition):
    trait: Path
    op: TraitOp
    # Missing and null are the same: `exists` and `not_exists` take no value.
    value: Any = Field(default=None, validate_default=True)


class PropertyCondition(_ValueCondition):
    property: Path
    op: PropertyOp
    value: Any = Field(default=None, validate_default=True)


class PropertyAll(_Node):
    nodes: list["PropertyNode"] = Field(alias="all", min_length=1)


class PropertyAny(_Node):
    nodes: list["PropertyNode"] = Field(alias="any", min_length=1)


class PropertyNot(_Node):
    node: "PropertyNode" = Field(alias="not")


# --- comparisons and windows -----------------------------------------------------------------


class Comparison(_Node):
    """A count compared with exactly one of eq, ne, lt, lte, gt, gte."""

    eq: Count | None = None
    ne: Count | None = None
    lt: Count | None = None
    lte: Count | None = None
    gt: Count | None = None
    gte: Count | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "Comparison":
        if sum(getattr(self, op) is not None for op in COUNT_OPS) != 1:
            raise _error("give exactly one of eq, ne, lt, lte, gt, gte")
        return self

    @property
    def op(self) -> tuple[CountOp, int]:
        return next((op, getattr(self, op)) for op in COUNT_OPS if getattr(self, op) is not None)

    @property
    def is_absence(self) -> bool | None:
        """True for "at most" counts (did not do X), False for "at least", None when neither."""
        op, number = self.op
        if op in ("lt", "lte") or (op == "eq" and number == 0):
            return True
        if op in ("gt", "gte") or (op == "ne" and number == 0):
            return False
        return None


class SeenCondition(_Node):
    """One condition on a moment: within_last, more_than_ago, before, after or between."""

    within_last: Duration | None = None
    more_than_ago: Duration | None = None
    before: DateBound | None = None
    after: DateBound | None = None
    between: Annotated[list[DateBound], Field(min_length=2, max_length=2)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "SeenCondition":
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) != 1:
            raise _error("give exactly one of within_last, more_than_ago, before, after, between")
        if self.between is not None:
            try:
                _check_between(self.between)
            except PydanticCustomError as exc:
                raise exc from None
        return self

    @property
    def op(self) -> tuple[str, Any]:
        return next((name, getattr(self, name)) for name in type(self).model_fields if getattr(self, name))


class Trend(_Node):
    window: TrendWindow
    change_lte: float | None = Field(default=None, allow_inf_nan=False)
    change_gte: float | None = Field(default=None, allow_inf_nan=False)

    @model_validator(mode="after")
    def _a_bound(self) -> "Trend":
        if self.change_lte is None and self.change_gte is None:
            raise _error("a trend needs change_lte and/or change_gte")
        return self


# --- rule nodes ------------------------------------------------------------------------------


class AllOf(_Node):
    nodes: list["RuleNode"] = Field(alias="all", min_length=1)


class AnyOf(_Node):
    nodes: list["RuleNode"] = Field(alias="any", min_length=1)


class NotNode(_Node):
    node: "RuleNode" = Field(alias="not")


class EventCount(_Node):
    event: Name
    where: "PropertyNode | None" = None
    count: Comparison
    within: EventWindow
    require_full_window: StrictBool | None = None


class EventTrend(_Node):
    event: Name
    where: "PropertyNode | None" = None
    trend: Trend
    require_full_window: StrictBool | None = None


class LastSeen(_Node):
    last_seen: SeenCondition
    require_full_window: StrictBool | None = None

    @model_validator(mode="after")
    def _window_only_for_relative(self) -> "LastSeen":
        relative = self.last_seen.op[0] in ("within_last", "more_than_ago")
        if self.require_full_window is not None and not relative:
            raise _error("require_full_window applies to within_last and more_than_ago only")
        return self


class FirstSeen(_Node):
    first_seen: SeenCondition


class ActiveDays(_Node):
    active_days: Comparison
    within: EventWindow
    require_full_window: StrictBool | None = None


class DistinctEvents(_Node):
    distinct_events: Comparison
    within: EventWindow
    prefix: Name | None = None
    require_full_window: StrictBool | None = None


class SegmentRef(_Node):
    segment: Annotated[str, Field(min_length=1, max_length=128, strict=True)]


# Tags carry a prefix so they can be told apart from field names in error locations.
_RULE_TAGS: dict[str, type[_Node]] = {
    "rule:all": AllOf,
    "rule:any": AnyOf,
    "rule:not": NotNode,
    "rule:trait": TraitCondition,
    "rule:event": EventCount,
    "rule:trend": EventTrend,
    "rule:last_seen": LastSeen,
    "rule:first_seen": FirstSeen,
    "rule:active_days": ActiveDays,
    "rule:distinct_events": DistinctEvents,
    "rule:segment": SegmentRef,
}
_PROPERTY_TAGS: dict[str, type[_Node]] = {
    "where:all": PropertyAll,
    "where:any": PropertyAny,
    "where:not": PropertyNot,
    "where:property": PropertyCondition,
}
_TAG_OF_CLASS = {cls: tag for tags in (_RULE_TAGS, _PROPERTY_TAGS) for tag, cls in tags.items()}


def _tag_by_keys(tags: dict[str, type[_Node]], prefix: str) -> Callable[[Any], str | None]:
    keys = [tag.removeprefix(prefix) for tag in tags]

    def tag_of(raw: Any) -> str | None:
        if isinstance(raw, _Node):
            return _TAG_OF_CLASS.get(type(raw))
        if not isinstance(raw, dict):
            return None
        if prefix == "rule:" and "event" in raw:
            return "rule:trend" if "trend" in raw else "rule:event"
        return next((prefix + key for key in keys if key in raw), None)

    return tag_of


RuleNode = Annotated[
    Annotated[AllOf, Tag("rule:all")]
    | Annotated[AnyOf, Tag("rule:any")]
    | Annotated[NotNode, Tag("rule:not")]
    | Annotated[TraitCondition, Tag("rule:trait")]
    | Annotated[EventCount, Tag("rule:event")]
    | Annotated[EventTrend, Tag("rule:trend")]
    | Annotated[LastSeen, Tag("rule:last_seen")]
    | Annotated[FirstSeen, Tag("rule:first_seen")]
    | Annotated[ActiveDays, Tag("rule:active_days")]
    | Annotated[DistinctEvents, Tag("rule:distinct_events")]
    | Annotated[SegmentRef, Tag("rule:segment")],
    Discriminator(
        _tag_by_keys(_RULE_TAGS, "rule:"),
        custom_error_type="rule_node",
        custom_error_message="not a rule node: expected an object with one of all, any, not, trait, "
        "event, last_seen, first_seen, active_days, distinct_events, segment",
    ),
]
PropertyNode = Annotated[
    Annotated[PropertyAll, Tag("where:all")]
    | Annotated[PropertyAny, Tag("where:any")]
    | Annotated[PropertyNot, Tag("where:not")]
    | Annotated[PropertyCondition, Tag("where:property")],
    Discriminator(
        _tag_by_keys(_PROPERTY_TAGS, "where:"),
        custom_error_type="where_node",
        custom_error_message="not a property condition: expected an object with one of "
        "all, any, not, property",
    ),
]

for _model in (PropertyAll, PropertyAny, PropertyNot, AllOf, AnyOf, NotNode, EventCount, EventTrend):
    _model.model_rebuild()


class Rule(RootModel[RuleNode]):
    """A validated segment rule; `root` is the top node."""

    model_config = ConfigDict(frozen=True)

    def as_json(self) -> dict[str, Any]:
        return self.root.as_json()


# --- the API's entry points --------------------------------------------------------------------


def parse_rule(raw: Any, *, max_window_days: int = DEFAULT_MAX_WINDOW_DAYS) -> Rule:
    """Validate a submitted rule. Raises Unprocessable with JSON pointers into `raw`."""
    problems = _shape_problems(raw)
    if not problems:
        try:
            return Rule.model_validate(raw, context={"max_window_days": max_window_days})
        except ValidationError as exc:
            problems = [{"pointer": _pointer(err["loc"]), "message": err["msg"]} for err in exc.errors()]
    first = problems[0]
    raise Unprocessable(f"invalid rule at '{first['pointer']}': {first['message']}", problems)


def _shape_problems(raw: Any) -> list[dict[str, str]]:
    """Depth and size limits, checked before pydantic so huge or deep input is cheap to reject."""
    count = 0
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(raw, 1, ())]
    while stack:
        node, depth, loc = stack.pop()
        if not isinstance(node, dict):
            continue
        count += 1
        if depth > MAX_DEPTH:
            return [{"pointer": _pointer(loc), "message": f"rules may nest at most {MAX_DEPTH} levels"}]
        if count > MAX_NODES:
            return [{"pointer": "", "message": f"rules may have at most {MAX_NODES} nodes"}]
        for key in ("all", "any"):
            if isinstance(node.get(key), list):
                stack.extend((child, depth + 1, (*loc, key, i)) for i, child in enumerate(node[key]))
        for key in ("not", "where"):
            stack.append((node.get(key), depth + 1, (*loc, key)))
    return []


def _pointer(loc: tuple[str | int, ...]) -> str:
    tags = ("rule:", "where:")
    parts = [str(part) for part in loc if not (isinstance(part, str) and part.startswith(tags))]
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def iter_nodes(node: Any) -> Iterator[_Node]:
    """Every rule node of a tree, parents first (not the `where` conditions inside events)."""
    yield node
    if isinstance(node, AllOf | AnyOf):
        for child in node.nodes:
            yield from iter_nodes(child)
    elif isinstance(node, NotNode):
        yield from iter_nodes(node.node)


def referenced_segments(rule: Rule) -> set[str]:
    return {node.segment for node in iter_nodes(rule.root) if isinstance(node, SegmentRef)}


def find_cycle(segment_id: str, rule: Rule, lookup: Callable[[str], Rule | None]) -> list[str] | None:
    """The path `[segment_id, ..., segment_id]` if saving `rule` as `segment_id` closes a loop.

    `lookup` returns a dynamic segment's rule, or None for static (or unknown) segments.
    """
    path = [segment_id]
    cleared: set[str] = set()

    def visit(current: Rule) -> list[str] | None:
        for ref in sorted(referenced_segments(current)):
            if ref == segment_id:
                return [*path, ref]
            # A loop elsewhere was rejected when it was saved; don't walk it forever.
            if ref in cleared or ref in path:
                continue
            inner = lookup(ref)
            if inner is not None:
                path.append(ref)
                found = visit(inner)
                path.pop()
                if found:
                    return found
            cleared.add(ref)
        return None

    return visit(rule)
