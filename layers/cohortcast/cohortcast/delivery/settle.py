"""The settle job: deliveries in doubt past the settle window, and deferred ones now due.

It only finds them (sparse `DueIndex`, `SETTLE#<shard>`) and queues them again as `resume`
chunks; the consumers decide per record, conditionally, so an extra run or a duplicated
message does nothing. A claim in doubt whose SES `Send` event arrived meanwhile is `sent`
already and no longer in the index.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cohortcast.clock import isoformat
from cohortcast.config import get_settings
from cohortcast.messages import MAX_RECIPIENTS, MESSAGE_VERSION, FanoutChunk, FanoutRecipient, to_json
from cohortcast.storage import aws, keys
from cohortcast.storage import delivery as store

MAX_PER_SHARD = 5000  # per run; the rest waits for the next run (every few minutes)


@dataclass(slots=True)
class SettleRun:
    due: int = 0
    chunks: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)


def settle_due(now: datetime, *, sqs: Any = None) -> SettleRun:
    run = SettleRun()
    groups: dict[tuple[str, str], list[FanoutRecipient]] = {}
    for due_pk in keys.settle_due_pks():
        for record in store.due_records(due_pk, isoformat(now), MAX_PER_SHARD):
            groups.setdefault((record.announcement_id, record.channel), []).append(
                FanoutRecipient(user_id=record.user_id, segment_id=record.segment_id)
            )
            run.due += 1
    sqs = sqs or aws.client("sqs")
    settings = get_settings()
    entries: dict[str, list[dict[str, Any]]] = {}
    for (announcement_id, channel), recipients in groups.items():
        url = settings.email_queue_url if channel == "email" else settings.sns_delivery_queue_url
        for start in range(0, len(recipients), MAX_RECIPIENTS):
            chunk = FanoutChunk(
                v=MESSAGE_VERSION,
                announcement_id=announcement_id,
                channel=channel,
                chunk_id=f"settle:{isoformat(now)}:{start // MAX_RECIPIENTS}",
                recipients=recipients[start : start + MAX_RECIPIENTS],
                resume=True,
            )
            entries.setdefault(url, []).append(
                {
                    "Id": str(len(entries.get(url, []))),
                    "MessageBody": to_json(chunk),
                    "MessageAttributes": {"channel": {"DataType": "String", "StringValue": channel}},
                }
            )
            run.chunks += 1
            run.by_channel[channel] = run.by_channel.get(channel, 0) + 1
    for url, batch in entries.items():
        for start in range(0, len(batch), 10):
            response = sqs.send_message_batch(QueueUrl=url, Entries=batch[start : start + 10])
            if response.get("Failed"):
                raise RuntimeError(f"could not queue {len(response['Failed'])} settle chunk(s)")
    return run
