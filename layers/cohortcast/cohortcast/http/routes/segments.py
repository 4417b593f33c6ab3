"""Segment routes (admin): definitions, static members, preview, explain, history, templates."""

import base64
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel, ConfigDict, Field

from cohortcast.clock import utcnow
from cohortcast.errors import BadRequest, PayloadTooLarge
from cohortcast.segments import service
from cohortcast.segments.jobs import send_job
from cohortcast.storage.segments import SegmentDefinition

router = Router()

SegmentId = Annotated[str, Path(min_length=1, max_length=64, description="the segment id (seg_…)")]
UserId = Annotated[str, Path(min_length=1, max_length=256, description="the user's userId")]
MAX_CSV_BYTES = 1_000_000
UserIdList = Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]], Field(max_length=5000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SegmentCreate(_Strict):
    name: Annotated[str, Field(max_length=200)] | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    kind: Literal["dynamic", "static"] | None = Field(default=None, description="inferred from the fields")
    rule: dict[str, Any] | None = Field(default=None, description="a rule tree (docs/rules.md)")
    template: str | None = Field(default=None, description="a template id from /v1/segment-templates")
    overrides: dict[str, Any] | None = Field(default=None, description="the template's parameters to change")
    members: UserIdList | None = Field(default=None, description="user ids of a static segment")


class SegmentUpdate(_Strict):
    name: Annotated[str, Field(max_length=200)] | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    rule: dict[str, Any] | None = None
    template: str | None = None
    overrides: dict[str, Any] | None = None
    version: int | None = Field(
        default=None, description="fail with 409 unless the segment is at this version"
    )


class PreviewRequest(_Strict):
    rule: dict[str, Any] | None = None
    template: str | None = None
    overrides: dict[str, Any] | None = None


class MembersChange(_Strict):
    add: UserIdList = []
    remove: UserIdList = []


class Backfill(BaseModel):
    state: str = Field(description="pending, running or done")
    processed: int = Field(default=0, description="profiles evaluated so far")
    matched: int = 0
    started_at: str | None = None
    finished_at: str | None = None


class MembersImport(BaseModel):
    state: str = Field(description="running or done")
    job_id: str
    total: int = Field(description="user ids the CSV lists")
    processed: int = Field(description="ids applied so far (added + unchanged)")
    added: int
    unchanged: int = Field(description="already members, or listed twice")
    rejected: int = Field(description="CSV lines not imported")
    rejected_rows: list[dict[str, Any]] = Field(description="the first 100 of them: {line, message}")
    started_at: str
    updated_at: str
    finished_at: str | None = None


class Segment(BaseModel):
    segment_id: str
    name: str
    description: str
    kind: str
    rule: dict[str, Any] | None
    template: str | None
    version: int
    status: str
    size: int
    backfill: Backfill
    members_import: MembersImport | None = Field(
        default=None, description="the latest CSV import job of a static segment"
    )
    created_at: str
    updated_at: str


class SegmentList(BaseModel):
    segments: list[Segment]


class MembersReport(BaseModel):
    added: int
    removed: int
    unchanged: int
    rejected: list[dict[str, Any]] = Field(default=[], description="CSV lines not imported: {line, message}")


class ImportAccepted(BaseModel):
    segment_id: str
    members_import: MembersImport | None
    rejected: list[dict[str, Any]] = Field(default=[], description="CSV lines not imported: {line, message}")


class Member(BaseModel):
    user_id: str | None
    profile: str
    entered_at: str | None
    reason: str | None


class MembersPage(BaseModel):
    members: list[Member]
    next_cursor: str | None


class PreviewResult(BaseModel):
    count: int
    exact: bool = Field(description="false when the count is extrapolated from the profiles scanned")
    scanned: int
    sample: list[str]


class Template(BaseModel):
    template_id: str
    name: str
    description: str
    params: dict[str, Any]
    rule: dict[str, Any]


class TemplateList(BaseModel):
    templates: list[Template]


def _segment(d: SegmentDefinition) -> Segment:
    parts = (d.backfill or {}).get("parts") or {}
    backfill = {k: v for k, v in (d.backfill or {"state": "pending"}).items() if k in Backfill.model_fields}
    if parts and backfill.get("state") == "running":
        backfill["processed"] = sum(int(p.get("processed", 0)) for p in parts.values())
        backfill["matched"] = sum(int(p.get("matched", 0)) for p in parts.values())
    return Segment(
        segment_id=d.segment_id,
        name=d.name,
        description=d.description,
        kind=d.kind,
        rule=d.rule,
        template=d.template,
        version=d.version,
        status=d.status,
        size=d.size,
        backfill=Backfill(**backfill),
        members_import=_members_import(d.members_import),
        created_at=d.created_at,
        updated_at=d.updated_at,
    )


def _members_import(progress: dict[str, Any]) -> MembersImport | None:
    if not progress:
        return None
    return MembersImport(**{k: v for k, v in progress.items() if k in MembersImport.model_fields})


def _accepted(d: SegmentDefinition) -> Response:
    return Response(
        status_code=202 if d.kind == "dynamic" else 201,
        content_type=content_types.APPLICATION_JSON,
        body=_segment(d).model_dump(mode="json"),
    )


_SEGMENT_RESPONSES: dict[int | str, Any] = {
    202: {
        "description": "saved; the backfill runs in the background",
        "content": {"application/json": {"model": Segment}},
    },
}


@router.get("/v1/segment-templates", summary="Named segment templates", tags=["segments"])
def list_templates() -> TemplateList:
    return TemplateList(templates=[Template(**t) for t in service.templates()])


@router.post(
    "/v1/segments",
    summary="Create a segment (rule, template or static members)",
    tags=["segments"],
    responses=_SEGMENT_RESPONSES,
)
def create_segment(body: SegmentCreate):  # no return annotation: returns a 201/202 Response
    return _accepted(service.create(body.model_dump(exclude_none=True), utcnow(), send_job))


@router.get("/v1/segments", summary="All segments", tags=["segments"])
def list_segments() -> SegmentList:
    return SegmentList(segments=[_segment(d) for d in service.list_all()])


@router.post(
    "/v1/segments/preview", summary="Count and sample of a rule's matches (not saved)", tags=["segments"]
)
def preview_segment(body: PreviewRequest) -> PreviewResult:
    found = service.preview(body.model_dump(exclude_none=True), utcnow())
    return PreviewResult(count=found.count, exact=found.exact, scanned=found.scanned, sample=found.sample)


@router.get(
    "/v1/segments/<segment_id>", summary="A segment with its size and backfill progress", tags=["segments"]
)
def get_segment(segment_id: SegmentId) -> Segment:
    return _segment(service.get(segment_id))


@router.put(
    "/v1/segments/<segment_id>", summary="Edit a segment (a new rule is backfilled)", tags=["segments"]
)
def update_segment(segment_id: SegmentId, body: SegmentUpdate) -> Segment:
    return _segment(service.update(segment_id, body.model_dump(exclude_none=True), utcnow(), send_job))


@router.delete(
    "/v1/segments/<segment_id>", summary="Delete a segment (409 while others use it)", tags=["segments"]
)
def delete_segment(segment_id: SegmentId) -> dict[str, Any]:
    service.delete(segment_id, send_job)
    return {"segment_id": segment_id, "deleted": True}


@router.post("/v1/segments/<segment_id>/members", summary="Add or remove static members", tags=["segments"])
def change_members(segment_id: SegmentId, body: MembersChange) -> MembersReport:
    report = service.change_static_members(segment_id, body.add, body.remove, utcnow())
    return MembersReport(added=report.added, removed=report.removed, unchanged=report.unchanged)


@router.post(
    "/v1/segments/<segment_id>/members.csv",
    summary="Add static members from CSV (text/csv: a user_id column, or one column of ids)",
    tags=["segments"],
    responses={
        202: {
            "description": "more than 1,000 ids: a job imports them; GET /v1/segments/{id} shows progress",
            "content": {"application/json": {"model": ImportAccepted}},
        }
    },
)
def import_members_csv(segment_id: SegmentId):  # no return annotation: returns a 200/202 Response
    event = router.current_event
    raw = event.body or ""
    try:
        data = base64.b64decode(raw) if event.is_base64_encoded else raw.encode()
        if len(data) > MAX_CSV_BYTES:
            raise PayloadTooLarge(f"CSV larger than {MAX_CSV_BYTES} bytes")
        text = data.decode("utf-8-sig")
    except (ValueError, UnicodeDecodeError) as err:
        raise BadRequest("the CSV must be UTF-8 text", code="invalid_csv") from err
    report = service.import_csv(segment_id, text, utcnow(), send_job)
    if report.job is not None:
        accepted = ImportAccepted(
            segment_id=segment_id, members_import=_members_import(report.job), rejected=report.rejected
        )
        return Response(202, content_types.APPLICATION_JSON, accepted.model_dump(mode="json"))
    body = MembersReport(
        added=report.added, removed=report.removed, unchanged=report.unchanged, rejected=report.rejected
    )
    return Response(200, content_types.APPLICATION_JSON, body.model_dump(mode="json"))


@router.get("/v1/segments/<segment_id>/members", summary="Members, paged", tags=["segments"])
def list_members(
    segment_id: SegmentId,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> MembersPage:
    found, next_cursor = service.members(segment_id, limit, cursor)
    return MembersPage(
        members=[
            Member(user_id=m.user_id, profile=m.profile_pk, entered_at=m.entered_at, reason=m.reason)
            for m in found
        ],
        next_cursor=next_cursor,
    )


@router.get(
    "/v1/segments/<segment_id>/explain/<user_id>",
    summary="The rule tree with each node's value for one user",
    tags=["segments"],
)
def explain_membership(segment_id: SegmentId, user_id: UserId) -> dict[str, Any]:
    return service.explain(segment_id, user_id, utcnow())


@router.get(
    "/v1/segments/<segment_id>/history", summary="Size over time and recent enters/exits", tags=["segments"]
)
def segment_history(
    segment_id: SegmentId, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> dict[str, Any]:
    return service.history(segment_id, limit)
