"""Deliver-email function: each SQS record is one fan-out chunk → ledger → SES (cohortcast.delivery.chunk)."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from cohortcast.clock import utcnow
from cohortcast.delivery.consumer import deliver_email_body
from cohortcast.observability import logger, metrics, tracer
from cohortcast.services.ports import delivery_ports

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    result = deliver_email_body(record.body, now=utcnow(), ports=delivery_ports())
    for name, value in result.counts.items():
        if value > 0 and name in ("sent", "failed", "in_doubt"):
            metrics.add_metric(name=f"email_{name}", unit=MetricUnit.Count, value=value)
    if any(name.startswith("skipped.") and value > 0 for name, value in result.counts.items()):
        skipped = sum(v for n, v in result.counts.items() if n.startswith("skipped.") and v > 0)
        metrics.add_metric(name="email_skipped", unit=MetricUnit.Count, value=skipped)


@logger.inject_lambda_context(correlation_id_path="Records[0].messageId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
