"""What the queue consumers call per SQS record: parse, pick the channel, run the chunk."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from cohortcast.delivery.chunk import (
    ChunkResult,
    PoisonMessage,
    Ports,
    parse_chunk,
    process_chunk,
)
from cohortcast.messages import FanoutChunk


class RetryLater(Exception):
    """Some recipients were not sent (SES/SNS throttling): fail the record so SQS redelivers it.
    Those already sent are in the ledger and are not sent again."""


def deliver_email_body(
    body: str,
    *,
    now: datetime,
    ports: Ports,
    ses: Any = None,
    sleep: Callable[[float], None] | None = None,
) -> ChunkResult:
    from cohortcast.delivery.email import EmailChannel  # lazy: the SNS consumer never loads SES code

    chunk = _chunk_for(body, ("email",))
    channel = EmailChannel(settings=ports.settings(), now=now, ses=ses)
    if sleep is not None:
        channel.sleep = sleep
    return _run(chunk, channel, ports, now)


def deliver_sns_body(
    body: str,
    *,
    now: datetime,
    ports: Ports,
    sns: Any = None,
    sleep: Callable[[float], None] | None = None,
) -> ChunkResult:
    from cohortcast.delivery.sns import SnsChannel  # lazy: the email consumer never loads SNS code

    chunk = _chunk_for(body, ("push", "sms"))
    channel = SnsChannel(name=chunk.channel, sns=sns)
    if sleep is not None:
        channel.sleep = sleep
    return _run(chunk, channel, ports, now)


def _chunk_for(body: str, channels: tuple[str, ...]) -> FanoutChunk:
    chunk = parse_chunk(body)
    if chunk.channel not in channels:
        raise PoisonMessage(f"a {chunk.channel} chunk on the {'/'.join(channels)} queue")
    return chunk


def _run(chunk: FanoutChunk, channel: Any, ports: Ports, now: datetime) -> ChunkResult:
    result = process_chunk(chunk, channel, ports, now)
    if result.retry:
        raise RetryLater(f"chunk {chunk.chunk_id}: some recipients throttled")
    return result
