"""Evaluate function: profile changes (ProfilesTable stream) and the scheduled sweep (time passing)."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from cohortcast.clock import parse_timestamp, utcnow
from cohortcast.observability import logger, metrics, tracer
from cohortcast.segments import evaluation, sweep
from cohortcast.segments.jobs import send_job
from cohortcast.segments.registry import get_registry

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


@tracer.capture_method
def record_handler(record: DynamoDBRecord) -> None:
    summary = evaluation.evaluate_stream_record(record.raw_event, get_registry(), utcnow())
    metrics.add_metric(name="SegmentEnters", unit="Count", value=summary.entered)
    metrics.add_metric(name="SegmentExits", unit="Count", value=summary.exited)


def _sweep(event: dict[str, Any]) -> dict[str, Any]:
    # EventBridge's `time` is the run's clock: a delayed or replayed run evaluates as of then.
    now = parse_timestamp(event["time"]) if event.get("time") else utcnow()
    result = sweep.run(get_registry(), now)
    if result.continuation:
        send_job(result.continuation)
    snapshots = sweep.snapshot_sizes(now)
    summary = result.summary
    metrics.add_metric(name="SweepUsersEvaluated", unit="Count", value=summary.evaluated)
    logger.info(
        "sweep", extra={"evaluated": summary.evaluated, "entered": summary.entered, "exited": summary.exited}
    )
    return {
        "evaluated": summary.evaluated,
        "entered": summary.entered,
        "exited": summary.exited,
        "continued": result.continuation is not None,
        "snapshots": snapshots,
    }


@logger.inject_lambda_context(correlation_id_path="id")
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if "Records" in event:
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    return _sweep(event)
