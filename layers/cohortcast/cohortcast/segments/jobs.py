"""Segment jobs travel as messages on the BackfillQueue: backfill pages, sweep continuations,
purges and CSV import chunks (`cohortcast.messages`)."""

from datetime import datetime

from cohortcast.clock import parse_timestamp
from cohortcast.config import get_settings
from cohortcast.messages import BackfillJob, ImportJob, PurgeJob, SegmentJob, SweepJob, to_json
from cohortcast.segments import backfill, bulk, service, sweep
from cohortcast.segments.registry import get_registry
from cohortcast.storage import aws


def send_job(message: SegmentJob) -> None:
    url = get_settings().backfill_queue_url
    if not url:
        raise RuntimeError("BACKFILL_QUEUE_URL is not set for this function")
    aws.client("sqs").send_message(QueueUrl=url, MessageBody=to_json(message))


def run_job(message: SegmentJob, now: datetime, *, redelivered: bool = False) -> str:
    """Dispatch one BackfillQueue message; `now` is when it runs (a sweep carries its own)."""
    match message:
        case BackfillJob():
            return backfill.process_page(message, now, send_job, redelivered=redelivered)
        case SweepJob():
            result = sweep.run(
                get_registry(),
                parse_timestamp(message.now),
                shards=message.shards,
                start_key=message.start_key,
            )
            if result.continuation:
                send_job(result.continuation)
            return f"swept {result.summary.evaluated}"
        case ImportJob():
            return bulk.process_import(message, now, send_job, redelivered=redelivered)
        case PurgeJob():
            return f"purged {service.purge(message.segment_id, now, send_job)}"
        case _:
            raise TypeError(f"not a segment job: {message!r}")
