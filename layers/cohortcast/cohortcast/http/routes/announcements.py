"""Announcement routes (admin): create / dry-run, list, read with counts, cancel."""

from datetime import datetime
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel, ConfigDict, Field

from cohortcast.announcements import service
from cohortcast.announcements.models import (
    Announcement,
    AnnouncementRequest,
    Channel,
    Counts,
    InAppCounts,
    Status,
)
from cohortcast.clock import utcnow
from cohortcast.errors import BadRequest
from cohortcast.http.idempotency import create_idempotent

router = Router()

AnnouncementId = Annotated[str, Path(min_length=1, max_length=64, description="the announcement's id")]
MAX_IDEMPOTENCY_KEY = 255


class InAppStats(InAppCounts):
    eligible: int = Field(description="audience members who would see it if they opened the feed now")
    eligible_complete: bool = Field(description="false: counting stopped early, `eligible` is a lower bound")


class SegmentCounts(BaseModel):
    segment_id: str
    counts: Counts
    in_app: InAppStats | None = None


class AnnouncementView(Announcement):
    """`GET /v1/announcements/{id}`: the announcement with its counts, total and per segment."""

    counts: Counts
    segments: list[SegmentCounts] = Field(description="per targeted segment (recipients counted once)")
    in_app: InAppStats | None = Field(default=None, description="with the in_app channel: live engagement")


class ReactionView(BaseModel):
    user_id: str
    reaction: str
    comment: str | None = None
    at: str


class ReactionPage(BaseModel):
    reactions: list[ReactionView]
    next_cursor: str | None


class AnnouncementSummary(BaseModel):
    id: str
    title: str
    status: Status
    channels: list[Channel]
    topic: str | None = None
    send_at: str | None = None
    local_time: str | None = None
    created_at: str
    completed_at: str | None = None


class AnnouncementPage(BaseModel):
    announcements: list[AnnouncementSummary]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next (older) page")


class ChannelEstimate(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    reachable: int = Field(description="recipients who would be sent to on this channel")
    skipped: dict[str, int] = Field(description="recipients who would be skipped, by reason")
    deferred: dict[str, int] = Field(
        default={}, description="reachable recipients who would wait (quiet hours, local time), by reason"
    )


class DryRun(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    dry_run: Literal[True] = True
    audience_size: int = Field(description="identified users in the audience snapshot now")
    by_segment: dict[str, int] = Field(description="audience attributed to its first matching segment")
    channels: dict[str, ChannelEstimate]
    sampled: bool = Field(description="channel figures come from the first `sample_size` recipients")
    sample_size: int
    notes: list[str] = []


def announcement_view(announcement_id: str) -> AnnouncementView:
    """Read back from the table: the publisher may have moved it on since this request changed it."""
    announcement = service.get_announcement(announcement_id)
    counts = service.get_counts(announcement)
    in_app: InAppStats | None = None
    eligible_by_segment: dict[str, int] = {}
    if "in_app" in announcement.channels:
        eligible, eligible_by_segment, complete = service.eligible_now(announcement, utcnow())
        in_app = InAppStats(**counts.in_app.model_dump(), eligible=eligible, eligible_complete=complete)
    segments = [
        SegmentCounts(
            segment_id=segment_id,
            counts=segment_counts,
            in_app=InAppStats(
                **counts.in_app_by_segment[segment_id].model_dump(),
                eligible=eligible_by_segment.get(segment_id, 0),
                eligible_complete=in_app.eligible_complete,
            )
            if in_app is not None
            else None,
        )
        for segment_id, segment_counts in counts.by_segment.items()
    ]
    return AnnouncementView(
        **announcement.model_dump(), counts=counts.total, segments=segments, in_app=in_app
    )


def _create(body: AnnouncementRequest, now: datetime) -> dict[str, Any]:
    return announcement_view(service.create(body, now).id).model_dump(mode="json")


_CREATE_RESPONSES: dict[int | str, Any] = {
    201: {
        "description": "created (status scheduled or publishing)",
        "content": {"application/json": {"model": AnnouncementView}},
    },
    200: {
        "description": "?dry_run=true: the audience now, nothing saved",
        "content": {"application/json": {"model": DryRun}},
    },
}


def _json(status: int, body: Any) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


@router.post(
    "/v1/announcements",
    summary="Create an announcement (now or at send_at); ?dry_run=true estimates its audience",
    description="Send an `Idempotency-Key` header to make retries safe: the same key and body return "
    "the first response; the same key with another body is rejected with 422.",
    tags=["announcements"],
    responses=_CREATE_RESPONSES,
)
def create_announcement(body: AnnouncementRequest, dry_run: Annotated[bool, Query()] = False):  # Response
    now = utcnow()
    if dry_run:
        # lazy: the estimate loads the delivery channels (~30 ms), which only a dry run needs
        from cohortcast.services.dry_run import estimate

        return _json(200, DryRun.model_validate(estimate(body, now)).model_dump(mode="json"))
    key = router.current_event.get_header_value("Idempotency-Key")
    if key is None:
        return _json(201, _create(body, now))
    if not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY:
        raise BadRequest(
            f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} characters",
            {"in": "header", "pointer": "/Idempotency-Key"},
            code="invalid_idempotency_key",
        )
    return _json(201, create_idempotent(body, key, lambda: _create(body, now), router.lambda_context))


@router.get("/v1/announcements", summary="Announcements, newest first", tags=["announcements"])
def list_announcements(
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> AnnouncementPage:
    announcements, next_cursor = service.list_announcements(limit, cursor)
    summaries = [AnnouncementSummary.model_validate(a.model_dump()) for a in announcements]
    return AnnouncementPage(announcements=summaries, next_cursor=next_cursor)


@router.get(
    "/v1/announcements/<announcement_id>",
    summary="An announcement with its counts, in total and per targeted segment",
    tags=["announcements"],
)
def get_announcement(announcement_id: AnnouncementId) -> AnnouncementView:
    return announcement_view(announcement_id)


@router.post(
    "/v1/announcements/<announcement_id>/cancel",
    summary="Cancel a scheduled announcement (409 once publishing has started)",
    tags=["announcements"],
)
def cancel_announcement(announcement_id: AnnouncementId) -> AnnouncementView:
    return announcement_view(service.cancel(announcement_id, utcnow()).id)


@router.get(
    "/v1/announcements/<announcement_id>/reactions",
    summary="Users' in-app reactions to an announcement, with their comments",
    tags=["announcements"],
)
def list_reactions(
    announcement_id: AnnouncementId,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> ReactionPage:
    service.get_announcement(announcement_id)  # 404 for an unknown one
    reactions, next_cursor = service.list_reactions(announcement_id, limit, cursor)
    return ReactionPage(reactions=[ReactionView(**r) for r in reactions], next_cursor=next_cursor)
