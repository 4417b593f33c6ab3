"""The settle job's queue message is the fan-out chunk the deliverer parses, byte for byte as
it always was, with `resume` set."""

from datetime import timedelta

import boto3
import pytest

from cohortcast.delivery.consumer import deliver_email_body
from cohortcast.delivery.settle import settle_due
from tests.component.delivery_pipeline.conftest import (
    ANNOUNCEMENT_ID,
    NOW,
    SEGMENT,
    chunk_body,
    no_sleep,
)


class CrashBeforeOutcome(Exception):
    pass


class SesThatDies:
    def send_email(self, **_request):
        raise CrashBeforeOutcome()


def test_a_claim_left_in_doubt_is_queued_again_as_a_resume_chunk_on_the_email_queue(world) -> None:
    world.add_users({"zoë": {"email": "zoe@example.net"}, "ann": {"email": "ann@example.net"}})
    for user_id in ("zoë", "ann"):
        with pytest.raises(CrashBeforeOutcome):
            deliver_email_body(
                chunk_body([user_id]), now=NOW, ports=world.ports(), ses=SesThatDies(), sleep=no_sleep
            )

    later = NOW + timedelta(minutes=30)
    run = settle_due(later)

    assert (run.due, run.chunks, run.by_channel) == (2, 1, {"email": 1})  # one chunk per announcement
    sqs = boto3.client("sqs")
    (message,) = sqs.receive_message(
        QueueUrl=world.aws.url("EmailQueue"), MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]
    assert message["MessageAttributes"]["channel"]["StringValue"] == "email"
    # recipients in settle-shard order (keys.settle_due_pks; the shard is a hash of the user id)
    assert message["Body"] == (
        f'{{"v":1,"announcement_id":"{ANNOUNCEMENT_ID}","channel":"email",'
        '"chunk_id":"settle:2026-11-23T12:30:00.000Z:0","recipients":['
        f'{{"user_id":"zo\\u00eb","segment_id":"{SEGMENT}"}},{{"user_id":"ann","segment_id":"{SEGMENT}"}}'
        '],"resume":true}'
    )
