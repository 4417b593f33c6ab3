"""Ingest function: the Segment HTTP Tracking API."""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cohortcast.http.app import build_resolver
from cohortcast.http.routes.ingest import router
from cohortcast.observability import logger, metrics, tracer

app = build_resolver(router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
