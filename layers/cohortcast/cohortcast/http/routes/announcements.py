"""Announcement routes (admin): create / dry-run, list, read with counts, cancel."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from cohortcast.announcements import service
from cohortcast.announcements.models import AnnouncementPage, AnnouncementRequest, AnnouncementView, DryRun
from cohortcast.clock import utcnow
from cohortcast.errors import BadRequest
from cohortcast.http.idempotency import create_idempotent

router = Router()

AnnouncementId = Annotated[str, Path(min_length=1, max_length=64, description="the announcement's id")]
MAX_IDEMPOTENCY_KEY = 255

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

        return _json(200, estimate(body, now).model_dump(mode="json"))
    key = router.current_event.get_header_value("Idempotency-Key")
    if key is None:
        return _json(201, service.create(body, now).model_dump(mode="json"))
    if not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY:
        raise BadRequest(
            f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} characters",
            {"in": "header", "pointer": "/Idempotency-Key"},
            code="invalid_idempotency_key",
        )
    return _json(201, create_idempotent(body, now, key, router.lambda_context))


@router.get("/v1/announcements", summary="Announcements, newest first", tags=["announcements"])
def list_announcements(
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> AnnouncementPage:
    return service.list_page(limit, cursor)


@router.get(
    "/v1/announcements/<announcement_id>",
    summary="An announcement with its counts, in total and per targeted segment",
    tags=["announcements"],
)
def get_announcement(announcement_id: AnnouncementId) -> AnnouncementView:
    return service.get_view(announcement_id)


@router.post(
    "/v1/announcements/<announcement_id>/cancel",
    summary="Cancel a scheduled announcement (409 once publishing has started)",
    tags=["announcements"],
)
def cancel_announcement(announcement_id: AnnouncementId) -> AnnouncementView:
    return service.cancel(announcement_id, utcnow())
