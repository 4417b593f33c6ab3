"""Announcements as the API and the deliverer see them: create (or dry-run), read, list, cancel."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ulid import ULID

from cohortcast.announcements import audience as audience_snapshot
from cohortcast.announcements import bus
from cohortcast.announcements.models import Announcement, AnnouncementRequest, Audience, Counts, InAppCounts
from cohortcast.announcements.publish import STALL_AFTER
from cohortcast.clock import isoformat
from cohortcast.errors import Conflict, NotFound, Unprocessable
from cohortcast.storage import announcements as store
from cohortcast.storage import feed as feed_store
from cohortcast.storage import segments as segment_store
from cohortcast.workspace import service as workspace

MAX_SCHEDULE_AHEAD = timedelta(days=366)
ELIGIBLE_MAX_PAGES = 40  # 20,000 audience members counted at most when an announcement is read


# -- reading -----------------------------------------------------------------------------------


def get_announcement(announcement_id: str) -> Announcement:
    """The announcement (no counts). Raises NotFound. The deliverer caches it per container."""
    document = store.get_announcement(announcement_id)
    if document is None:
        raise NotFound(f"no announcement with id {announcement_id!r}", code="announcement_not_found")
    return Announcement.model_validate(document)


@dataclass(frozen=True, slots=True)
class AllCounts:
    """Deliveries (email, push, SMS) and in-app engagement, in total and per targeted segment."""

    total: Counts
    by_segment: dict[str, Counts]
    in_app: InAppCounts
    in_app_by_segment: dict[str, InAppCounts]


def get_counts(announcement: Announcement) -> AllCounts:
    """Each recipient counted once, under the first targeted segment they were reached through."""
    total, by_segment = store.get_counts(announcement.id)
    targeted = announcement.audience.segments
    return AllCounts(
        total=Counts.from_counters(total),
        by_segment={s: Counts.from_counters(by_segment.get(s, {})) for s in targeted},
        in_app=InAppCounts.from_counters(total),
        in_app_by_segment={s: InAppCounts.from_counters(by_segment.get(s, {})) for s in targeted},
    )


def eligible_now(announcement: Announcement, now: datetime) -> tuple[int, dict[str, int], bool]:
    """Who the in-app post targets now (live, unlike the email snapshot): (total, per segment,
    complete). Counted with the publish snapshot's reads, at most ELIGIBLE_MAX_PAGES pages."""
    total, by_segment, complete = 0, dict.fromkeys(announcement.audience.segments, 0), False
    for pages, page in enumerate(audience_snapshot.iter_snapshot(announcement.audience, now), start=1):
        for _user_id, segment_id in page:
            total += 1
            if segment_id is not None:
                by_segment[segment_id] += 1
        if pages >= ELIGIBLE_MAX_PAGES:
            break
    else:
        complete = True
    return total, by_segment, complete


def list_reactions(
    announcement_id: str, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """In-app reactions with their comments, by user id."""
    return feed_store.reactions_page(announcement_id, limit, cursor)


def list_announcements(limit: int, cursor: str | None) -> tuple[list[Announcement], str | None]:
    """Newest first; the cursor is opaque."""
    documents, next_cursor = store.list_announcements(limit, cursor)
    return [Announcement.model_validate(d) for d in documents], next_cursor


# -- validation --------------------------------------------------------------------------------


def validate_request(request: AnnouncementRequest, now: datetime) -> Audience:
    """Every check that can fail before anything is stored; 422 naming the field (or 404 segment)."""
    from cohortcast.announcements.render import validate_body  # lazy: Jinja, Markdown, nh3 are heavy

    validate_body(request.body, request.title)
    if request.send_at is not None and request.local_time is not None:
        raise Unprocessable(
            "give either send_at (one UTC moment) or local_time (each recipient's time), not both",
            [{"pointer": "/local_time", "message": "not with send_at"}],
        )
    if request.send_at is not None:
        if request.send_at <= now:
            raise Unprocessable(
                "send_at must be in the future (UTC); omit it to send now",
                [{"pointer": "/send_at", "message": "in the past"}],
            )
        if request.send_at - now > MAX_SCHEDULE_AHEAD:
            raise Unprocessable("send_at is more than a year ahead", [{"pointer": "/send_at"}])
    audience = request.audience
    if audience is None or (not audience.everyone and not audience.segments and audience.rule is None):
        raise Unprocessable(
            "an announcement needs an audience: audience.everyone, audience.segments or audience.rule",
            [{"pointer": "/audience", "message": "no audience"}],
            code="no_audience",
        )
    given = [name for name in ("everyone", "segments", "rule") if getattr(audience, name)]
    if len(given) > 1:
        raise Unprocessable(
            f"give one of audience.everyone, audience.segments or audience.rule, not {' and '.join(given)}",
            [{"pointer": f"/audience/{given[1]}"}],
        )
    _validate_in_app(request, now)
    referenced = [("/audience/segments", s) for s in audience.segments]
    referenced += [("/audience/exclude_segments", s) for s in audience.exclude_segments]
    if audience.rule is not None:
        referenced += [("/audience/rule", s) for s in _parse_rule_references(audience.rule)]
    for pointer, segment_id in referenced:
        if segment_store.get_definition(segment_id) is None:
            raise Unprocessable(
                f"unknown segment {segment_id!r}",
                [{"pointer": pointer, "message": "unknown segment", "segment_id": segment_id}],
                code="unknown_segment",
            )
    return audience


def _validate_in_app(request: AnnouncementRequest, now: datetime) -> None:
    known = workspace.get_workspace_settings().labels
    for index, label in enumerate(request.labels):
        if label not in known:
            raise Unprocessable(
                f"unknown label {label!r}; the workspace's labels are {', '.join(known)} (PUT /v1/settings)",
                [{"pointer": f"/labels/{index}", "message": "unknown label", "label": label}],
                code="unknown_label",
            )
    if request.visible_until is not None and request.visible_until <= (request.send_at or now):
        raise Unprocessable(
            "visible_until must be after the announcement is published",
            [{"pointer": "/visible_until", "message": "before publishing"}],
        )
    in_app_only = ("labels", "image_url", "cta", "pinned", "visible_until")
    if "in_app" not in request.channels:
        for name in in_app_only:
            if name in request.model_fields_set and getattr(request, name):
                raise Unprocessable(
                    f'{name} is shown in the in-app feed: add "in_app" to channels',
                    [{"pointer": f"/{name}", "message": "needs the in_app channel"}],
                )


def _parse_rule_references(raw: dict[str, Any]) -> set[str]:
    # the deliverer reads announcements through this module and never needs the rule grammar
    from cohortcast.segments.rules import parse_rule, referenced_segments  # lazy: ~45 ms to import

    try:
        rule = parse_rule(raw, max_window_days=workspace.retention_days())
    except Unprocessable as exc:
        details = [
            {**d, "pointer": "/audience/rule" + d.get("pointer", "")}
            for d in (exc.details or [])
            if isinstance(d, dict)
        ]
        raise Unprocessable(f"audience.rule: {exc.message}", details, code=exc.code) from exc
    return referenced_segments(rule)


# -- creating ----------------------------------------------------------------------------------


def new_announcement_id(now: datetime) -> str:
    return f"ann_{ULID.from_datetime(now)}"


def create(request: AnnouncementRequest, now: datetime) -> Announcement:
    """Store it, then schedule it (send_at) or queue its first publish page (now)."""
    audience = validate_request(request, now)
    scheduled = request.send_at is not None
    announcement = Announcement(
        id=new_announcement_id(now),
        title=request.title,
        body=request.body,
        topic=request.topic,
        channels=request.channels,
        priority=request.priority,
        status="scheduled" if scheduled else "publishing",
        audience=audience,
        send_at=isoformat(request.send_at) if request.send_at else None,
        local_time=request.local_time,
        created_at=isoformat(now),
        published_at=None if scheduled else isoformat(now),
        labels=request.labels,
        image_url=request.image_url,
        cta=request.cta,
        pinned=request.pinned,
        visible_until=isoformat(request.visible_until) if request.visible_until else None,
        email_if_unread_after=request.email_if_unread_after,
    )
    # An immediate one is `publishing` from here: if queueing page 0 below never happens (a
    # crash, SQS unavailable), the stalled-publishing sweep queues it after STALL_AFTER.
    store.put_announcement(
        announcement.model_dump(mode="json"),
        stall_check_at=None if scheduled else isoformat(now + STALL_AFTER),
    )
    if request.send_at is not None:
        try:
            bus.create_schedule(announcement.id, request.send_at)
        except Exception:
            # Never leave a "scheduled" announcement that nothing will ever publish.
            store.move_status(announcement.id, ("scheduled",), "cancelled", {"cancelled_at": isoformat(now)})
            raise
    else:
        bus.enqueue_page(announcement.id, 0, None)
    return announcement


# -- cancelling --------------------------------------------------------------------------------


def cancel(announcement_id: str, now: datetime) -> Announcement:
    """Only a scheduled announcement can be cancelled; its schedule is deleted. 409 otherwise."""
    announcement = get_announcement(announcement_id)
    try:
        store.move_status(announcement_id, ("scheduled",), "cancelled", {"cancelled_at": isoformat(now)})
    except store.StatusConflict as exc:
        raise Conflict(
            f"announcement is {announcement.status}; only scheduled announcements can be cancelled",
            {"status": announcement.status},
            code="not_cancellable",
        ) from exc
    # After the status moved, a schedule that fires anyway finds "cancelled" and does nothing.
    bus.delete_schedule(announcement_id)
    return get_announcement(announcement_id)
