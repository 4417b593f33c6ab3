"""Feed function: the in-app feed API (write key + user hash, CORS), the widget script and the
public changelog."""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cohortcast.http.app import build_resolver
from cohortcast.http.routes import changelog, feed
from cohortcast.observability import logger, metrics, tracer

app = build_resolver(feed.router, changelog.router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    path = event.get("rawPath") or ""
    if not path.startswith("/v1/feed"):
        return app.resolve(event, context)
    headers = feed.cors_headers((event.get("headers") or {}).get("origin"))
    if (event.get("requestContext") or {}).get("http", {}).get("method") == "OPTIONS":
        return {"statusCode": 204, "headers": headers, "body": ""}
    response = app.resolve(event, context)
    response["headers"] = {**(response.get("headers") or {}), **headers}
    return response
