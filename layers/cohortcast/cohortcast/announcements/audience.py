"""The audience snapshot, one page at a time: who is targeted now, attributed to a segment.

A recipient belongs to the FIRST targeted segment (in the announcement's order) they are a
member of, so per-segment counts add up to the total. Exclusions and the "already counted in
an earlier segment" test read each page's membership states in one `BatchGetItem` per 100.
"""

from collections.abc import Iterator
from datetime import datetime

from cohortcast.announcements.models import Audience
from cohortcast.storage import cursors
from cohortcast.storage import profiles as profile_store
from cohortcast.storage import segments as segment_store
from cohortcast.workspace import service as workspace

PAGE_SIZE = 500  # members read per publish invocation: ~1 s of work, 10 SNS messages per channel
Recipient = tuple[str, str | None]  # (user_id, segment_id or None for an inline rule)


def snapshot_page(
    audience: Audience, cursor: str | None, now: datetime, *, limit: int | None = None
) -> tuple[list[Recipient], str | None]:
    """One page of recipients and the cursor of the next page (None when this was the last)."""
    limit = limit or PAGE_SIZE
    if audience.rule is not None or audience.everyone:  # every identified profile, or those matching
        return _profiles_page(audience, cursor, now, limit)
    return _segments_page(audience, cursor, limit)


def iter_snapshot(
    audience: Audience, now: datetime, *, limit: int | None = None
) -> Iterator[list[Recipient]]:
    cursor: str | None = None
    while True:
        page, cursor = snapshot_page(audience, cursor, now, limit=limit)
        yield page
        if cursor is None:
            return


def _segments_page(audience: Audience, cursor: str | None, limit: int) -> tuple[list[Recipient], str | None]:
    position = cursors.decode_object(cursor) if cursor else {"i": 0}
    index, member_cursor = int(position.get("i", 0)), position.get("c")
    segments = audience.segments
    while index < len(segments):
        found, member_cursor = segment_store.member_page(segments[index], limit, member_cursor)
        members = [(m.profile_pk, m.user_id) for m in found if m.user_id]
        if found or member_cursor is None:
            break
    else:
        return [], None
    earlier = set(segments[:index])
    excluded = set(audience.exclude_segments)
    if members and (earlier or excluded):
        states = segment_store.get_states(pk for pk, _ in members)
        blocked = earlier | excluded
        members = [
            (pk, user_id) for pk, user_id in members if not (states.get(pk) and states[pk].segments & blocked)
        ]
    page = [(user_id, segments[index]) for _, user_id in members]
    if member_cursor is not None:
        return page, cursors.encode({"i": index, "c": member_cursor})
    if index + 1 < len(segments):
        return page, cursors.encode({"i": index + 1})
    return page, None


def _profiles_page(
    audience: Audience, cursor: str | None, now: datetime, limit: int
) -> tuple[list[Recipient], str | None]:
    # A publish of segment audiences never needs the rule engine: only an inline rule does.
    from cohortcast.segments.inline import InlineRule  # lazy: ~90 ms to import

    rule = InlineRule(audience.rule) if audience.rule is not None else None
    start_key = cursors.decode_object(cursor).get("k") if cursor else None
    records, last_key = profile_store.scan_page(limit, start_key, identified_only=True)
    records = [r for r in records if r.user_id]
    needs_states = bool(audience.exclude_segments) or (rule is not None and rule.references_segments)
    states = segment_store.get_states(r.pk for r in records) if needs_states and records else {}
    excluded = set(audience.exclude_segments)
    retention = workspace.retention_days()
    page: list[Recipient] = []
    for record in records:
        state = states.get(record.pk)
        member_of = frozenset(state.segments) if state else frozenset()
        if member_of & excluded:
            continue
        if rule is None or rule.matches(record, member_of, now, retention):
            page.append((record.user_id, None))  # type: ignore[arg-type]
    return page, cursors.encode({"k": last_key}) if last_key else None
