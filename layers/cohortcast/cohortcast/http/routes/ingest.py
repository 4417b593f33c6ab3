"""Ingest routes: the Segment HTTP Tracking API."""

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import BaseModel, Field

from cohortcast.clock import utcnow
from cohortcast.errors import BadRequest, Forbidden, Unauthorized
from cohortcast.http.auth import (
    ANONYMOUS,
    Caller,
    caller_from_event,
    caller_from_key,
    key_from_authorization,
)
from cohortcast.ingest.messages import MESSAGE_TYPES
from cohortcast.ingest.payload import MAX_BATCH_BYTES, MAX_BATCH_MESSAGES, MAX_MESSAGE_BYTES, decode_body
from cohortcast.ingest.service import Batch, IngestResult, ingest
from cohortcast.observability import metrics
from cohortcast.workspace import service as workspace

router = Router()


class RejectedMessage(BaseModel):
    index: int = Field(description="position of the message in the request (0 for single calls)")
    code: str
    message: str
    field: str | None = None


class IngestResponse(BaseModel):
    success: bool = True
    accepted: int = Field(description="messages stored, including retried duplicates stored earlier")
    duplicates: int = Field(description="messages already stored earlier (same messageId)")
    rejected: list[RejectedMessage] = []


def _handle(implied_type: str | None) -> IngestResponse:
    # Content-Type is not checked: clients label the same JSON as application/json, text/plain
    # (sendBeacon) or form-urlencoded (RudderStack's Node SDK); decode_body reads the bytes.
    event = router.current_event
    caller = _caller_before_body(event)
    limit = MAX_MESSAGE_BYTES if implied_type else MAX_BATCH_BYTES
    document = decode_body(
        event.body,
        is_base64=event.is_base64_encoded,
        content_encoding=event.headers.get("content-encoding"),
        limit=limit,
    )
    if not isinstance(document, dict):
        raise BadRequest("request body must be a JSON object", code="invalid_body")
    if caller is None:
        _authenticate_body(document.get("writeKey"))
    batch = _batch(document, implied_type)
    result = ingest(batch, received_at=utcnow(), retention_days=workspace.retention_days())
    metrics.add_metric(name="MessagesAccepted", unit="Count", value=result.accepted)
    metrics.add_metric(name="MessagesRejected", unit="Count", value=len(result.rejected))
    return _respond(result, single=implied_type is not None)


def _caller_before_body(event: Any) -> Caller | None:
    """The caller named by the Authorization header, checked before the body is read; None
    when the header names no key, so the key can only be the body's writeKey (Segment allows it)."""
    caller = caller_from_event(event.raw_event)
    if caller.scope == "none" and key_from_authorization(event.headers.get("authorization")) is None:
        return None
    _require_write(caller)
    return caller


def _authenticate_body(body_write_key: Any) -> None:
    _require_write(caller_from_key(body_write_key) if isinstance(body_write_key, str) else ANONYMOUS)


def _require_write(caller: Caller) -> None:
    if caller.scope == "none":
        raise Unauthorized("missing or unknown write key (HTTP Basic username, or writeKey in the body)")
    if caller.scope != "write":
        raise Forbidden("ingest routes need a write key")


def _batch(document: dict, implied_type: str | None) -> Batch:
    if implied_type is not None:
        return Batch(items=[document], implied_type=implied_type)
    items = document.get("batch")
    if not isinstance(items, list):
        raise BadRequest("batch must be a list of messages", {"pointer": "/batch"}, code="invalid_batch")
    if len(items) > MAX_BATCH_MESSAGES:
        raise BadRequest(
            f"batch has {len(items)} messages; the limit is {MAX_BATCH_MESSAGES}",
            {"pointer": "/batch", "limit": MAX_BATCH_MESSAGES},
            code="batch_too_large",
        )
    context, integrations = document.get("context"), document.get("integrations")
    return Batch(
        items=items,
        sent_at=document.get("sentAt"),
        context=context if isinstance(context, dict) else None,
        integrations=integrations if isinstance(integrations, dict) else None,
    )


def _respond(result: IngestResult, *, single: bool) -> IngestResponse:
    if result.rejected and (single or result.accepted == 0):
        first = result.rejected[0]
        prefix = "" if single else f"batch/{first['index']}: "
        raise BadRequest(prefix + first["message"], result.rejected, code=first["code"])
    return IngestResponse(
        accepted=result.accepted,
        duplicates=result.duplicates,
        rejected=[RejectedMessage(**r) for r in result.rejected],
    )


def _route(implied_type: str | None) -> Callable[[], IngestResponse]:
    def handler() -> IngestResponse:
        return _handle(implied_type)

    handler.__name__ = f"ingest_{implied_type or 'batch'}"
    return handler


for _type in MESSAGE_TYPES:
    router.post(
        f"/v1/{_type}",
        summary=f"Segment {_type} call",
        tags=["ingest"],
    )(_route(_type))
for _path in ("/v1/batch", "/v1/import"):
    router.post(
        _path,
        summary="Segment batch (up to 2,500 messages, 500 KB); bad items are reported by index",
        tags=["ingest"],
    )(_route(None))
