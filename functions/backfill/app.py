"""Backfill function: segment jobs from the BackfillQueue (backfill pages, sweep continuations, purges)."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from cohortcast.clock import utcnow
from cohortcast.messages import segment_job
from cohortcast.observability import logger, metrics, tracer
from cohortcast.segments import jobs

processor = BatchProcessor(event_type=EventType.SQS)


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    redelivered = int(record.attributes.approximate_receive_count or 1) > 1
    message = segment_job.validate_json(record.body)
    outcome = jobs.run_job(message, utcnow(), redelivered=redelivered)
    logger.info("segment job", extra={"job": message.job, "outcome": outcome})


@logger.inject_lambda_context(correlation_id_path="Records[0].messageId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
