"""Segment jobs travel as messages on the BackfillQueue: backfill pages, sweep continuations,
purges and CSV import chunks."""

import json
from datetime import datetime
from typing import Any

from cohortcast.clock import parse_timestamp
from cohortcast.config import get_settings
from cohortcast.segments import backfill, bulk, service, sweep
from cohortcast.segments.registry import get_registry
from cohortcast.storage import aws


def send_job(message: dict[str, Any]) -> None:
    url = get_settings().backfill_queue_url
    if not url:
        raise RuntimeError("BACKFILL_QUEUE_URL is not set for this function")
    aws.client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps(message, separators=(",", ":")))


def run_job(message: dict[str, Any], now: datetime, *, redelivered: bool = False) -> str:
    """Dispatch one BackfillQueue message; `now` is when it runs (a sweep carries its own)."""
    kind = message.get("job")
    if kind == "backfill":
        return backfill.process_page(message, now, send_job, redelivered=redelivered)
    if kind == "sweep":
        result = sweep.run(
            get_registry(),
            parse_timestamp(message["now"]),
            shards=message.get("shards"),
            start_key=message.get("start_key"),
        )
        if result.continuation:
            send_job(result.continuation)
        return f"swept {result.summary.evaluated}"
    if kind == "import":
        return bulk.process_import(message, now, send_job, redelivered=redelivered)
    if kind == "purge":
        return f"purged {service.purge(message['segment_id'], now, send_job)}"
    raise ValueError(f"unknown segment job {kind!r}")
