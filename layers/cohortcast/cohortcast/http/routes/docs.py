"""The API's own documentation: `/openapi.json` and the Swagger page at `/docs` (public)."""

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types

from cohortcast.http.app import API_TITLE, API_VERSION
from cohortcast.ingest.payload import MAX_BATCH_MESSAGES

_MESSAGE_SCHEMA = {
    "type": "object",
    "description": "A Segment message: userId or anonymousId, plus event/traits/properties by type",
}
_BATCH_SCHEMA = {
    "type": "object",
    "required": ["batch"],
    "properties": {"batch": {"type": "array", "maxItems": MAX_BATCH_MESSAGES, "items": _MESSAGE_SCHEMA}},
}


def add_request_bodies(openapi: dict[str, Any]) -> dict[str, Any]:
    """Ingest routes read their (possibly gzip) body themselves; describe it in the document."""
    for path, operations in openapi.get("paths", {}).items():
        if (
            path.startswith("/v1/")
            and "post" in operations
            and "ingest" in operations["post"].get("tags", [])
        ):
            schema = _BATCH_SCHEMA if path in ("/v1/batch", "/v1/import") else _MESSAGE_SCHEMA
            operations["post"]["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema}},
            }
    return openapi


def add_docs(app: APIGatewayHttpResolver) -> None:
    app.enable_swagger(path="/docs", title=API_TITLE, version=API_VERSION)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_document():  # no return annotation: Powertools would try to model Response
        return Response(
            status_code=200,
            content_type=content_types.APPLICATION_JSON,
            body=add_request_bodies(
                json.loads(app.get_openapi_json_schema(title=API_TITLE, version=API_VERSION))
            ),
        )
