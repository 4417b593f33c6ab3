"""The AWS messaging the publish path uses: fan-out over SNS, the publish queue, one-time schedules."""

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from cohortcast.config import get_settings
from cohortcast.messages import (
    MAX_RECIPIENTS,
    MESSAGE_VERSION,
    FanoutChunk,
    FanoutRecipient,
    PageTask,
    ScheduledStart,
    to_json,
)
from cohortcast.storage import aws

SNS_BATCH = 10  # PublishBatch entries per request


class FanoutFailed(Exception):
    """Some chunks could not be published; the page is retried (chunks are idempotent downstream)."""


def chunk_id(announcement_id: str, page: int, chunk: int, channel: str) -> str:
    """Stable: a re-run of the same page republishes the same chunk ids."""
    return f"{announcement_id}:{page}:{chunk}:{channel}"


def page_of_chunk(chunk_id: str) -> tuple[str, int] | None:
    """(announcement id, page) of a chunk id made by `chunk_id`; None for any other id."""
    parts = chunk_id.split(":")
    if len(parts) != 4 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def fanout_messages(
    announcement_id: str, channels: Sequence[str], page: int, recipients: Sequence[tuple[str, str | None]]
) -> list[dict[str, Any]]:
    """The SNS messages for one page: one per (chunk of ≤50 recipients, channel)."""
    messages = []
    for chunk, start in enumerate(range(0, len(recipients), MAX_RECIPIENTS)):
        people = [
            FanoutRecipient(user_id=u, segment_id=s) for u, s in recipients[start : start + MAX_RECIPIENTS]
        ]
        for channel in channels:
            body = FanoutChunk(
                v=MESSAGE_VERSION,
                announcement_id=announcement_id,
                channel=channel,
                chunk_id=chunk_id(announcement_id, page, chunk, channel),
                recipients=people,
            )
            messages.append(
                {
                    "Message": to_json(body),
                    "MessageAttributes": {"channel": {"DataType": "String", "StringValue": channel}},
                }
            )
    return messages


def publish_fanout(messages: list[dict[str, Any]]) -> int:
    """PublishBatch, 10 per request; failed entries are retried once, then FanoutFailed."""
    topic = get_settings().fanout_topic_arn
    sns = aws.client("sns")
    requests = 0
    for start in range(0, len(messages), SNS_BATCH):
        pending = {str(i): m for i, m in enumerate(messages[start : start + SNS_BATCH])}
        for _attempt in range(2):
            response = sns.publish_batch(
                TopicArn=topic, PublishBatchRequestEntries=[{"Id": i, **m} for i, m in pending.items()]
            )
            requests += 1
            failed = {entry["Id"] for entry in response.get("Failed", [])}
            pending = {i: m for i, m in pending.items() if i in failed}
            if not pending:
                break
        if pending:
            raise FanoutFailed(f"{len(pending)} fan-out messages were not accepted by SNS")
    return requests


# -- the publish queue (FIFO: one group per announcement, continuation dedupe) ------------------


def enqueue_page(announcement_id: str, page: int, cursor: str | None) -> None:
    """Ask the publish function to snapshot and fan out page `page` (deduplicated for 5 min)."""
    task = PageTask(v=MESSAGE_VERSION, announcement_id=announcement_id, page=page, cursor=cursor)
    aws.client("sqs").send_message(
        QueueUrl=get_settings().publish_queue_url,
        MessageBody=to_json(task),
        MessageGroupId=announcement_id,
        MessageDeduplicationId=f"{announcement_id}:{page}",
    )


# -- one-time schedules (EventBridge Scheduler) -------------------------------------------------


def schedule_name(announcement_id: str) -> str:
    return f"announcement-{announcement_id}"[:64]


def create_schedule(announcement_id: str, send_at: datetime) -> str:
    """`at(...)` → PublishFunction with {"announcement_id"}; deleted by the scheduler after it runs."""
    settings = get_settings()
    name = schedule_name(announcement_id)
    target: dict[str, Any] = {
        "Arn": settings.publish_function_arn,
        "RoleArn": settings.scheduler_role_arn,
        # json.dumps' default separators: the schedule's input as it has always been written
        "Input": json.dumps(ScheduledStart(v=MESSAGE_VERSION, announcement_id=announcement_id).model_dump()),
        "RetryPolicy": {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 10},
    }
    if settings.publish_dlq_arn:
        target["DeadLetterConfig"] = {"Arn": settings.publish_dlq_arn}
    aws.client("scheduler").create_schedule(
        Name=name,
        GroupName=settings.schedule_group,
        ScheduleExpression=f"at({send_at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S')})",
        ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE",
        Target=target,
    )
    return name


def delete_schedule(announcement_id: str) -> bool:
    """False when there was no schedule any more (it already fired)."""
    try:
        aws.client("scheduler").delete_schedule(
            Name=schedule_name(announcement_id), GroupName=get_settings().schedule_group
        )
    except ClientError as err:
        if err.response["Error"]["Code"] == "ResourceNotFoundException":
            return False
        raise
    return True
