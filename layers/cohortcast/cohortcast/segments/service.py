"""Segments as the management API sees them: definitions, static members, preview, explain, history."""

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ulid import ULID

from cohortcast.clock import isoformat
from cohortcast.errors import Conflict, NotFound, Unprocessable
from cohortcast.messages import PurgeJob, SendJob
from cohortcast.profiles import service as profile_service
from cohortcast.profiles.record import view as profile_view
from cohortcast.segments import backfill, bulk, evaluation
from cohortcast.segments.bulk import MembersReport
from cohortcast.segments.registry import get_registry, invalidate
from cohortcast.storage import profiles as profile_store
from cohortcast.storage import segments as segment_store
from cohortcast.storage.segments import Member, SegmentDefinition
from cohortcast.workspace import service as workspace

MAX_MEMBERS_PER_REQUEST = 5_000
MAX_USER_ID = 256
PREVIEW_MAX_PROFILES = 5_000
# Profiles whose raw events a preview may read (for `where` counters); past it, it extrapolates.
PREVIEW_MAX_EVENT_READS = 1_000
PREVIEW_SAMPLE = 20
HISTORY_POINTS = 500


def _max_days() -> int:
    return workspace.retention_days()


def _rule_and_names(
    rule: Any, template: str | None, overrides: dict[str, Any] | None
) -> tuple[Any, str | None, str | None]:
    """(validated Rule, default name, default description) from a rule or a template."""
    # lazy: the rule models (pydantic) load only where a rule is parsed, not at the API's cold start
    from cohortcast.segments.rules import parse_rule
    from cohortcast.segments.templates import instantiate

    try:
        if template is not None:
            name, description, parsed = instantiate(template, overrides or {}, max_window_days=_max_days())
            return parsed, name, description
        return parse_rule(rule, max_window_days=_max_days()), None, None
    except Unprocessable as err:
        # The engine points into the rule (or the overrides); the API points into the request body.
        prefix = "/rule" if template is None else "/overrides"
        details = [
            {
                **d,
                "pointer": d["pointer"] if d.get("pointer") == "/template" else prefix + d.get("pointer", ""),
            }
            for d in (err.details or [])
            if isinstance(d, dict)
        ]
        first = details[0] if details else {"pointer": prefix, "message": err.message}
        raise Unprocessable(f"invalid rule at '{first['pointer']}': {first['message']}", details) from err


def _check_references(segment_id: str, parsed: Any) -> None:
    """Referenced segments must exist, and saving must not close a reference loop."""
    from cohortcast.segments.rules import find_cycle, referenced_segments  # lazy: as in _rule_and_names

    invalidate()
    registry = get_registry()
    unknown = sorted(ref for ref in referenced_segments(parsed) if ref not in registry.definitions)
    if unknown:
        raise Unprocessable(
            f"unknown segment {unknown[0]!r} referenced",
            [{"pointer": "/rule", "message": f"unknown segment {ref}"} for ref in unknown],
            code="unknown_segment",
        )
    cycle = find_cycle(segment_id, parsed, registry.rule_of)
    if cycle:
        path = " -> ".join(cycle)
        raise Unprocessable(
            f"segment reference cycle: {path}", [{"pointer": "/rule", "message": path}], code="segment_cycle"
        )


def create(body: dict[str, Any], now: datetime, send: SendJob) -> SegmentDefinition:
    """Save a dynamic (rule or template) or static (members) segment; backfills run in the background."""
    has_rule, has_template = body.get("rule") is not None, body.get("template") is not None
    static = body.get("kind") == "static" or body.get("members") is not None
    if has_rule + has_template + static != 1:
        raise Unprocessable(
            "give exactly one of rule, template or members (a static segment)",
            [{"pointer": "", "message": "exactly one of rule, template, members"}],
        )
    segment_id = f"seg_{ULID()}"
    at = isoformat(now)
    if static:
        members = body.get("members") or []
        _check_member_count(members)
        definition = SegmentDefinition(
            segment_id=segment_id,
            name=body.get("name") or "Static segment",
            kind="static",
            description=body.get("description") or "",
            created_at=at,
            updated_at=at,
            backfill={"state": "done", "processed": 0, "started_at": at, "finished_at": at},
        )
        segment_store.save_definition(definition)
        invalidate()
        if members:
            report = change_members(segment_id, members, [], now)
            definition.size = report.added
            definition.backfill["processed"] = report.added
        return definition
    parsed, default_name, default_description = _rule_and_names(
        body.get("rule"), body.get("template"), body.get("overrides")
    )
    _check_references(segment_id, parsed)
    definition = SegmentDefinition(
        segment_id=segment_id,
        name=body.get("name") or default_name or "Untitled segment",
        kind="dynamic",
        description=body.get("description") or default_description or "",
        rule=parsed.as_json(),
        template=body.get("template"),
        created_at=at,
        updated_at=at,
        backfill={"state": "pending"},
    )
    segment_store.save_definition(definition)
    invalidate()
    backfill.start(definition, now, send)
    return definition


def get(segment_id: str) -> SegmentDefinition:
    definition = segment_store.get_definition(segment_id)
    if definition is None:
        raise NotFound(f"no segment with id {segment_id!r}", code="segment_not_found")
    return definition


def list_all() -> list[SegmentDefinition]:
    return sorted(segment_store.list_definitions(), key=lambda d: d.created_at)


def update(segment_id: str, body: dict[str, Any], now: datetime, send: SendJob) -> SegmentDefinition:
    """Edit name/description, or the rule (which starts a new backfill)."""
    definition = get(segment_id)
    if body.get("version") is not None and body["version"] != definition.version:
        raise Conflict(
            f"segment {segment_id} is at version {definition.version}, not {body['version']}",
            code="version_conflict",
        )
    rule_given = body.get("rule") is not None or body.get("template") is not None
    if rule_given and definition.kind == "static":
        raise Unprocessable(
            "a static segment has members, not a rule", [{"pointer": "/rule", "message": "static segment"}]
        )
    if body.get("members") is not None:
        raise Unprocessable(
            "change members with POST /v1/segments/{id}/members",
            [{"pointer": "/members", "message": "not accepted here"}],
        )
    changed_rule = False
    if rule_given:
        parsed, _, _ = _rule_and_names(body.get("rule"), body.get("template"), body.get("overrides"))
        _check_references(segment_id, parsed)
        changed_rule = parsed.as_json() != definition.rule
        definition.rule = parsed.as_json()
        definition.template = body.get("template")
    for name in ("name", "description"):
        if body.get(name) is not None:
            setattr(definition, name, body[name])
    definition.updated_at = isoformat(now)
    try:
        segment_store.save_definition(definition)
    except segment_store.StaleDefinition as err:
        raise Conflict(
            f"segment {segment_id} changed meanwhile; read it again", code="version_conflict"
        ) from err
    invalidate()
    if changed_rule:
        backfill.start(definition, now, send, reason="rule_changed")
    return definition


def delete(segment_id: str, send: SendJob) -> None:
    definition = get(segment_id)
    from cohortcast.segments.rules import referenced_segments  # lazy: as in _rule_and_names

    invalidate()
    registry = get_registry()
    users = sorted(sid for sid, rule in registry.rules.items() if segment_id in referenced_segments(rule))
    if users:
        raise Conflict(
            f"segment {segment_id} is used by {', '.join(users)}; change those first",
            {"referenced_by": users},
            code="segment_in_use",
        )
    segment_store.delete_definition(definition.segment_id)
    invalidate()
    send(PurgeJob(job="purge", segment_id=segment_id))


def purge(segment_id: str, now: datetime, send: SendJob, *, batch: int = 500) -> int:
    """Remove a deleted segment's members (and the id from their state), a page per message."""
    if segment_store.get_definition(segment_id) is not None:
        return 0  # recreated? ids are never reused, so this is a stale message
    members, cursor = segment_store.member_page(segment_id, batch, None)
    at = isoformat(now)
    for member in members:
        segment_store.update_state(member.profile_pk, exited=[segment_id], updated_at=at)
        segment_store.remove_member(segment_id, member.profile_pk)
    if cursor is not None:
        send(PurgeJob(job="purge", segment_id=segment_id))
    else:
        segment_store.delete_segment_data(segment_id)
    return len(members)


# -- static members --------------------------------------------------------------------------


def _check_member_count(ids: list[Any]) -> None:
    if len(ids) > MAX_MEMBERS_PER_REQUEST:
        raise Unprocessable(
            f"at most {MAX_MEMBERS_PER_REQUEST} members per request; send several requests",
            [{"pointer": "/members", "message": "too many"}],
            code="too_many_members",
        )


def _static(segment_id: str) -> SegmentDefinition:
    definition = get(segment_id)
    if definition.kind != "static":
        raise Conflict(
            f"segment {segment_id} is dynamic: its members come from its rule", code="segment_not_static"
        )
    return definition


def change_members(segment_id: str, add: list[str], remove: list[str], now: datetime) -> MembersReport:
    _check_member_count([*add, *remove])
    return bulk.write_members(segment_id, add, remove, now)


def change_static_members(segment_id: str, add: list[str], remove: list[str], now: datetime) -> MembersReport:
    _static(segment_id)
    return change_members(segment_id, add, remove, now)


def import_csv(segment_id: str, text: str, now: datetime, send: SendJob) -> MembersReport:
    """Add the users of a CSV: a `user_id` (or `userId`) column, or a single column of ids.

    Up to bulk.INLINE_MEMBERS ids are added within the request; a larger CSV becomes a job
    whose progress the report (and GET /v1/segments/{id}) shows as `members_import`.
    """
    _static(segment_id)
    ids, rejected = parse_members_csv(text)
    if not ids and rejected:
        raise Unprocessable(
            f"line {rejected[0]['line']}: {rejected[0]['message']}", rejected, code="invalid_csv"
        )
    if len(ids) > bulk.INLINE_MEMBERS:
        return MembersReport(rejected=rejected, job=bulk.start_import(segment_id, ids, rejected, now, send))
    report = bulk.write_members(segment_id, ids, [], now)
    report.rejected = rejected
    return report


def parse_members_csv(text: str) -> tuple[list[str], list[dict[str, Any]]]:
    rows = list(csv.reader(io.StringIO(text)))
    ids: list[str] = []
    rejected: list[dict[str, Any]] = []
    if not rows:
        raise Unprocessable("the CSV is empty", [{"line": 1, "message": "empty"}], code="invalid_csv")
    header = [cell.strip().lower() for cell in rows[0]]
    column, first = 0, 0
    for name in ("user_id", "userid", "id"):
        if name in header:
            column, first = header.index(name), 1
            break
    else:
        if len(header) > 1:
            raise Unprocessable(
                "a CSV with several columns needs a user_id column",
                [{"line": 1, "message": "no user_id column"}],
                code="invalid_csv",
            )
    for number, row in enumerate(rows[first:], start=first + 1):
        if not row or all(not cell.strip() for cell in row):
            continue  # blank lines are not errors
        value = row[column].strip() if column < len(row) else ""
        if not value:
            rejected.append({"line": number, "message": "missing user id"})
        elif len(value) > MAX_USER_ID:
            rejected.append({"line": number, "message": f"user id longer than {MAX_USER_ID} characters"})
        else:
            ids.append(value)
    return ids, rejected


def members(segment_id: str, limit: int, cursor: str | None) -> tuple[list[Member], str | None]:
    get(segment_id)
    return segment_store.member_page(segment_id, limit, cursor)


# -- preview, explain, history ---------------------------------------------------------------


@dataclass(slots=True)
class Preview:
    count: int
    exact: bool
    scanned: int
    sample: list[str]


def preview(body: dict[str, Any], now: datetime) -> Preview:
    """Evaluate a rule (not saved) over up to PREVIEW_MAX_PROFILES profiles; estimate beyond that.

    `where` counters are counted from each profile's raw events (no profile keeps a counter for
    an unsaved rule), for at most PREVIEW_MAX_EVENT_READS profiles that performed the event.
    """
    from cohortcast.segments import counters  # lazy: it loads the rule engine
    from cohortcast.segments.engine import compile_rule  # lazy: the rule engine loads only to compile a rule
    from cohortcast.segments.rules import referenced_segments  # lazy: as in _rule_and_names

    parsed, _, _ = _rule_and_names(body.get("rule"), body.get("template"), body.get("overrides"))
    _check_references("(preview)", parsed)
    registry = get_registry()
    compiled = compile_rule(parsed, segment_rule=registry.rule_of)
    needs_state = bool(referenced_segments(parsed) - registry.rules.keys())
    specs, event_reads, retention = compiled.counter_specs(), 0, workspace.retention_days()
    scanned, matched, sample, exhausted = 0, 0, [], False
    start_key: dict[str, Any] | None = None
    while scanned < PREVIEW_MAX_PROFILES:
        records, start_key = profile_store.scan_page(1000, start_key)
        states = segment_store.get_states(r.pk for r in records) if needs_state and records else {}
        out_of_reads = False
        for record in records:
            if specs and counters.needs_events(record, specs):
                if event_reads == PREVIEW_MAX_EVENT_READS:
                    out_of_reads = True
                    break
                event_reads += 1
                counters.with_counts_from_events(record, specs, now, retention)
            state = states.get(record.pk)
            member_of = frozenset(state.segments) if state else frozenset()
            if compiled.matches(profile_view(record, member_of), now):
                matched += 1
                if len(sample) < PREVIEW_SAMPLE:
                    sample.append(record.user_id or f"anonymous:{record.anonymous_id}")
            scanned += 1
        if out_of_reads:
            break  # extrapolate from the profiles evaluated
        if start_key is None:
            exhausted = True
            break
    if exhausted or scanned == 0:
        return Preview(count=matched, exact=True, scanned=scanned, sample=sample)
    total = profile_store.approximate_count()
    estimate = round(matched * max(total, scanned) / scanned)
    return Preview(count=estimate, exact=False, scanned=scanned, sample=sample)


def explain(segment_id: str, user_id: str, now: datetime) -> dict[str, Any]:
    definition = get(segment_id)
    record = profile_service.find_profile(user_id)
    state = segment_store.get_states([record.pk]).get(record.pk)
    current = state.segments if state else set()
    member = segment_id in current
    result: dict[str, Any] = {
        "segment_id": segment_id,
        "user_id": record.user_id,
        "kind": definition.kind,
        "member": member,
        "next_check": state.due_at if state else None,
    }
    if definition.kind == "static":
        return result | {"matches": member, "rule": None}
    invalidate()
    registry = get_registry()
    compiled = registry.compiled.get(segment_id)
    if compiled is None:
        raise Unprocessable(
            f"the rule of {segment_id} cannot be evaluated: {registry.broken.get(segment_id)}",
            code="rule_broken",
        )
    view = profile_view(record, frozenset(current))
    tree = compiled.explain(view, now)
    flip = compiled.next_flip(view, now)
    return result | {
        "matches": compiled.matches(view, now),
        "only_because_new": _too_new_anywhere(tree),
        "next_flip": isoformat(flip) if flip else None,
        "rule": tree,
    }


def _too_new_anywhere(tree: dict[str, Any]) -> bool:
    """True when some node's answer comes from the user being younger than its window."""
    if tree.get("too_new"):
        return True
    return any(_too_new_anywhere(child) for child in tree.get("children") or [])


def history(segment_id: str, limit: int) -> dict[str, Any]:
    definition = get(segment_id)
    return {
        "segment_id": segment_id,
        "size": definition.size,
        "sizes": segment_store.size_history(segment_id, HISTORY_POINTS),
        "transitions": segment_store.recent_transitions(segment_id, limit),
    }


def templates() -> list[dict[str, Any]]:
    from cohortcast.segments.templates import TEMPLATES  # lazy: as in _rule_and_names

    return [
        {
            "template_id": t.template_id,
            "name": t.title,
            "description": t.description.format(
                **{k: ", ".join(v) if isinstance(v, list) else v for k, v in t.params.items()}
            ),
            "params": t.params,
            "rule": t.build(t.params),
        }
        for t in TEMPLATES.values()
    ]


def erase_memberships(profile_pk: str, now: datetime) -> int:
    """GDPR erasure: drop the user's memberships and transitions without writing new ones."""
    return evaluation.erase(profile_pk, now).exited
