"""Feedback function: SES configuration-set events (SNS → SQS) → suppression, ledger, counters.

Records are parsed one by one (a malformed one is a batch item failure, so it reaches the DLQ);
the parsed events are then applied together, so a batch costs a handful of requests.
"""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from cohortcast.clock import utcnow
from cohortcast.feedback.events import SesEvent, parse_body
from cohortcast.feedback.service import apply_events
from cohortcast.observability import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS)
_parsed: dict[str, SesEvent] = {}


def record_handler(record: SQSRecord) -> None:
    _parsed[record.message_id] = parse_body(record.body)


@logger.inject_lambda_context(correlation_id_path="Records[0].messageId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    _parsed.clear()
    with processor(records=event["Records"], handler=record_handler, lambda_context=context):
        processor.process()
    response = processor.response()
    outcome = apply_events(_parsed.values(), now=utcnow())
    # Lost a race with another writer of the same record: redeliver just those events.
    retry = [message_id for message_id, parsed in _parsed.items() if parsed.key in outcome.retry]
    response["batchItemFailures"] += [{"itemIdentifier": message_id} for message_id in retry]
    metrics.add_metric(name="ses_events", unit=MetricUnit.Count, value=len(_parsed))
    logger.info("feedback applied", extra={"updated": outcome.updated, "suppressed": outcome.suppressed})
    return response
