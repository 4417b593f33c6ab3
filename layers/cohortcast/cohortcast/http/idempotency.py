"""`Idempotency-Key` on POST /v1/announcements, with Powertools idempotency: the same key and
body answer the first response again; the same key with another body is a 422; the same key
while the first request still runs is a 409."""

from collections.abc import Callable
from typing import Any

from cohortcast.announcements.models import AnnouncementRequest
from cohortcast.config import get_settings
from cohortcast.errors import Conflict, Unprocessable


def create_idempotent(
    request: AnnouncementRequest, key: str, create: Callable[[], dict[str, Any]], context: Any = None
) -> dict[str, Any]:
    """`create()` (which returns the JSON response) under Powertools idempotency: same key + same
    body → the first response again; same key + another body → 422; same key while the first is
    still running → 409."""
    # lazy: Powertools idempotency loads only for a request that sends an Idempotency-Key
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    config = IdempotencyConfig(
        event_key_jmespath="key", payload_validation_jmespath="request", expires_after_seconds=24 * 3600
    )
    if context is not None:
        config.register_lambda_context(context)

    def _create(data: dict[str, Any]) -> dict[str, Any]:
        return create()

    guarded = idempotent_function(
        data_keyword_argument="data", persistence_store=_persistence(DynamoDBPersistenceLayer), config=config
    )(_create)
    try:
        return guarded(data={"key": key, "request": request.model_dump(mode="json")})
    except IdempotencyValidationError as exc:
        raise Unprocessable(
            "this Idempotency-Key was already used with a different request body",
            [{"in": "header", "pointer": "/Idempotency-Key"}],
            code="idempotency_key_reused",
        ) from exc
    except IdempotencyAlreadyInProgressError as exc:
        raise Conflict(
            "a request with this Idempotency-Key is still being processed; retry shortly",
            code="idempotency_in_progress",
        ) from exc


_persistence_layer: Any = None


def _persistence(layer_type: Any) -> Any:
    """Built on first use (not at import), then reused by the container."""
    global _persistence_layer
    if _persistence_layer is None or _persistence_layer.table_name != get_settings().idempotency_table:
        _persistence_layer = layer_type(table_name=get_settings().idempotency_table)
    return _persistence_layer
