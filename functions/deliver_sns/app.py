"""Deliver-SNS function: push (platform endpoints) and SMS chunks → ledger → SNS publish."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from cohortcast.clock import utcnow
from cohortcast.delivery.consumer import deliver_sns_body
from cohortcast.observability import logger, metrics, tracer
from cohortcast.services.ports import delivery_ports

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    result = deliver_sns_body(record.body, now=utcnow(), ports=delivery_ports())
    if result.counts.get("sent", 0) > 0:
        metrics.add_metric(name="sns_sent", unit=MetricUnit.Count, value=result.counts["sent"])


@logger.inject_lambda_context(correlation_id_path="Records[0].messageId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
