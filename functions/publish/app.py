"""Publish function: one-time schedules start an announcement; publish-queue pages fan it out;
a 5-minute schedule re-queues announcements stuck in `publishing`."""

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from cohortcast.announcements.publish import recover_stalled, run_page, start_scheduled
from cohortcast.clock import utcnow
from cohortcast.messages import PageTask, ScheduledStart
from cohortcast.observability import logger, metrics, tracer

# FIFO: pages of one announcement run in order; after a failure the rest of the batch is retried.
processor = SqsFifoPartialProcessor()


@tracer.capture_method
def page_handler(record: SQSRecord) -> None:
    task = PageTask.model_validate_json(record.body)
    logger.append_keys(announcement_id=task.announcement_id, page=task.page)
    outcome = run_page(task, utcnow())
    logger.info(
        "publish page done",
        extra={"recipients": outcome.recipients, "last": outcome.last, "skipped": outcome.skipped},
    )


@logger.inject_lambda_context(correlation_id_path="Records[0].messageId || announcement_id")
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if "Records" in event:
        return process_partial_response(
            event=event, record_handler=page_handler, processor=processor, context=context
        )
    if event.get("sweep"):  # the StalledSweep schedule (every 5 minutes)
        return {"requeued": recover_stalled(utcnow())}
    # EventBridge Scheduler invokes the function directly (asynchronously) with the schedule's Input.
    start = ScheduledStart.model_validate(event)
    logger.append_keys(announcement_id=start.announcement_id)
    return {"started": start_scheduled(start, utcnow())}
