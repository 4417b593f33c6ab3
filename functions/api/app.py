"""API function: the management API (admin keys), its OpenAPI document and docs page."""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cohortcast.http.app import MAX_MANAGEMENT_BODY_BYTES, build_resolver
from cohortcast.http.routes import announcements, ingest, segments, settings, users
from cohortcast.http.routes.docs import add_docs
from cohortcast.observability import logger, metrics, tracer

# The ingest router is included only so that /openapi.json documents every route:
# API Gateway sends ingest paths to the ingest function, never here.
app = build_resolver(
    users.router,
    segments.router,
    announcements.router,
    settings.router,
    ingest.router,
    scope="admin",
    max_body_bytes=MAX_MANAGEMENT_BODY_BYTES,
)
add_docs(app)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
