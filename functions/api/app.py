"""API function: the management API (admin keys), its OpenAPI document and docs page."""

import json

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cohortcast.announcements.routes import router as announcements_router
from cohortcast.http.app import API_TITLE, API_VERSION, MAX_MANAGEMENT_BODY_BYTES, build_resolver
from cohortcast.ingest.routes import add_request_bodies
from cohortcast.ingest.routes import router as ingest_router
from cohortcast.observability import logger, metrics, tracer
from cohortcast.profiles.routes import router as users_router
from cohortcast.segments.routes import router as segments_router
from cohortcast.workspace_routes import router as settings_router

# The ingest router is included only so that /openapi.json documents every route:
# API Gateway sends ingest paths to the ingest function, never here.
app = build_resolver(
    users_router,
    segments_router,
    announcements_router,
    settings_router,
    ingest_router,
    scope="admin",
    max_body_bytes=MAX_MANAGEMENT_BODY_BYTES,
)
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


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
