"""Authorizer function: labels each request with its API key's scope (see cohortcast.http.auth)."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from cohortcast.http.auth import authorize_request
from cohortcast.observability import logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return authorize_request(event.get("headers") or {})
