"""Settle function (scheduled): re-queue deliveries in doubt past the settle window, or deferred and due."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from cohortcast.clock import parse_timestamp, utcnow
from cohortcast.delivery.settle import settle_due
from cohortcast.observability import logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path="id")
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    now = parse_timestamp(event["time"]) if isinstance(event.get("time"), str) else utcnow()
    run = settle_due(now)
    metrics.add_metric(name="settle_due", unit=MetricUnit.Count, value=run.due)
    logger.info("settle run", extra={"due": run.due, "chunks": run.chunks})
    return {"due": run.due, "chunks": run.chunks}
