"""Crashes between the SES call and the outcome write, the settle job, and poison messages."""

from __future__ import annotations

import json
from datetime import timedelta

import boto3
import pytest

from cohortcast.delivery.consumer import deliver_email_body
from cohortcast.delivery.settle import settle_due
from cohortcast.feedback.service import apply_events
from cohortcast.storage import delivery as store
from tests.component.delivery_pipeline.conftest import ANNOUNCEMENT_ID, NOW, chunk_body, no_sleep, users


class Crash(Exception):
    """The invocation dies (timeout, out of memory) right after SES accepted the message."""


class CrashAfterSend:
    def __init__(self, ses):
        self.ses, self.requests, self.message_ids = ses, [], []

    def send_email(self, **request):
        response = self.ses.send_email(**request)
        self.requests.append(request)
        self.message_ids.append(response["MessageId"])
        raise Crash()


def deliver(world, body, ses, now=NOW):
    return deliver_email_body(body, now=now, ports=world.ports(), ses=ses, sleep=no_sleep)


def send_event(request, message_id, kind="Send"):
    """What the feedback function parses out of SES's SNS notification."""
    from cohortcast.feedback.events import parse_event

    tags = {tag["Name"]: [tag["Value"]] for tag in request["EmailTags"]}
    return parse_event({"eventType": kind, "mail": {"messageId": message_id, "tags": tags}})


def run_settle_and_queue(world, ses, now):
    sqs = boto3.client("sqs")
    url = world.aws.url("EmailQueue")
    run = settle_due(now)
    for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        deliver(world, message["Body"], ses, now=now)
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return run


def crash_once(world, ses):
    world.add_users(users(1))
    crashing = CrashAfterSend(ses)
    with pytest.raises(Crash):
        deliver(world, chunk_body(["u0"]), crashing)
    record = store.get_item(store.record_key("u0", ANNOUNCEMENT_ID, "email"))
    assert record["state"] == "claimed"  # in doubt
    assert world.counters.get("in_doubt") == 1
    return crashing


def test_a_crash_after_the_send_leaves_the_record_in_doubt_and_a_redelivery_does_not_resend(world, ses):
    crash_once(world, ses)
    deliver(world, chunk_body(["u0"]), ses)  # SQS redelivers the message
    assert len(world.sent()) == 1


def test_the_send_event_settles_a_record_in_doubt_as_sent_without_a_resend(world, ses):
    crashing = crash_once(world, ses)
    apply_events([send_event(crashing.requests[0], crashing.message_ids[0])], now=NOW)

    record = store.get_item(store.record_key("u0", ANNOUNCEMENT_ID, "email"))
    assert record["state"] == "sent" and "due_at" not in record
    assert world.counters.get("in_doubt") == 0 and world.counters.get("sent") == 1
    assert run_settle_and_queue(world, ses, NOW + timedelta(minutes=30)).due == 0
    assert len(world.sent()) == 1


def test_without_a_send_event_the_settle_job_sends_again_exactly_once(world, ses):
    world.add_users(users(1))

    class CrashBeforeSend:  # dies after the claim, before SES saw anything
        def send_email(self, **request):
            raise Crash()

    with pytest.raises(Crash):
        deliver(world, chunk_body(["u0"]), CrashBeforeSend())
    assert world.sent() == []

    assert run_settle_and_queue(world, ses, NOW + timedelta(minutes=10)).due == 0  # window not over yet
    later = NOW + timedelta(minutes=16)
    assert run_settle_and_queue(world, ses, later).due == 1
    assert run_settle_and_queue(world, ses, later + timedelta(minutes=20)).due == 0
    assert len(world.sent()) == 1
    record = store.get_item(store.record_key("u0", ANNOUNCEMENT_ID, "email"))
    assert record["state"] == "sent" and record["attempts"] == 2
    assert world.counters.total == {"in_doubt": 0, "sent": 1}


def test_a_duplicated_settle_message_resends_once(world, ses):
    world.add_users(users(1))

    class CrashBeforeSend:
        def send_email(self, **request):
            raise Crash()

    with pytest.raises(Crash):
        deliver(world, chunk_body(["u0"]), CrashBeforeSend())
    later = NOW + timedelta(minutes=16)
    resume = chunk_body(["u0"], resume=True)
    deliver(world, resume, ses, now=later)
    deliver(world, resume, ses, now=later)
    assert len(world.sent()) == 1


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps(
            {
                "v": 2,
                "announcement_id": "a",
                "channel": "email",
                "chunk_id": "c",
                "recipients": [{"user_id": "u"}],
            }
        ),
        json.dumps({"v": 1, "announcement_id": "a", "channel": "email", "chunk_id": "c", "recipients": []}),
        json.dumps(
            {
                "v": 1,
                "announcement_id": "a",
                "channel": "push",
                "chunk_id": "c",
                "recipients": [{"user_id": "u"}],
            }
        ),
    ],
)
def test_a_poison_message_is_a_batch_item_failure_and_the_rest_of_the_batch_goes_through(
    world, ses, lambda_context, monkeypatch, body
):
    from functions.deliver_email import app

    world.add_users(users(1))
    monkeypatch.setattr(app, "delivery_ports", world.ports)
    monkeypatch.setattr("cohortcast.storage.aws.ses_client", lambda: ses)
    event = {"Records": [_record("poison", body), _record("good", chunk_body(["u0"]))]}
    response = app.lambda_handler(event, lambda_context)
    assert response == {"batchItemFailures": [{"itemIdentifier": "poison"}]}
    assert len(world.sent()) == 1


def _record(message_id, body):
    return {
        "messageId": message_id,
        "receiptHandle": message_id,
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:EmailQueue",
        "awsRegion": "us-east-1",
    }
