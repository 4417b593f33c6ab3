"""Email delivery while DynamoDB throttles ~30% of its calls (tests/faults.py): chunks that fail
are redelivered by SQS, SES reports each accepted email (the configuration set's Send event),
the settle job runs on schedule. Reuses the crash-consistency world and its ledger checks."""

from __future__ import annotations

import threading
from datetime import timedelta

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError

from cohortcast.delivery.settle import settle_due
from cohortcast.feedback.service import apply_events
from tests.component.delivery_pipeline.conftest import NOW, chunk_body
from tests.component.delivery_pipeline.test_crash_consistency import (
    RECIPIENTS,
    Crash,
    assert_counts_match_the_ledger,
    deliver,
    ledger_tally,
)
from tests.component.delivery_pipeline.test_in_doubt_and_poison import _record, send_event

REDELIVERIES = 30
SETTLE_RUNS = 8  # SQS maxReceiveCount is 5 in the template; the budget here only bounds the loop


@pytest.fixture(autouse=True)
def delivery_clock(clock):
    clock.move_to(NOW)


class RecordingSes:
    """The SES client, noting each accepted email (SES publishes a Send event for each); with
    `crash_after`, the invocation dies right after that many emails were accepted."""

    def __init__(self, ses, crash_after: int | None = None) -> None:
        self.ses, self.accepted, self.crash_after, self.sends = ses, [], crash_after, 0
        self._lock = threading.Lock()

    def send_email(self, **request):
        response = self.ses.send_email(**request)
        with self._lock:
            self.accepted.append((request, response["MessageId"]))
            self.sends += 1
            crash = self.sends == self.crash_after
        if crash:
            raise Crash(f"after SES send #{self.sends}")
        return response

    def __getattr__(self, name):
        return getattr(self.ses, name)

    def take_send_events(self):
        events = [send_event(request, message_id) for request, message_id in self.accepted]
        self.accepted = []
        return events


def until_it_goes_through(action, faults):
    """Run `action` as SQS or the scheduler would: again after each failure, with the counts
    checked between attempts (a failure may leave work half done, never counts that disagree)."""
    for _ in range(REDELIVERIES):
        try:
            return action()
        except ClientError as err:
            assert err.response["Error"]["Code"] in (
                "ProvisionedThroughputExceededException",
                "ThrottlingException",
                "TransactionCanceledException",
            ), err
        with faults.off():
            assert_counts_match_the_ledger(planned=len(RECIPIENTS))
    raise AssertionError("never went through")


def feedback(ses, faults):
    events = ses.take_send_events()
    if events:
        until_it_goes_through(lambda: apply_events(events, now=NOW), faults)


def settle_and_drain(world, ses, now, faults):
    """The settle job at `now`, then the email queue's messages, each redelivered until done."""
    sqs = boto3.client("sqs")
    url = world.aws.url("EmailQueue")
    until_it_goes_through(lambda: settle_due(now), faults)
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            until_it_goes_through(lambda body=message["Body"]: deliver(world, body, ses, now), faults)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        feedback(ses, faults)


def finish(world, ses, faults):
    """SES's Send events, then the settle job every 20 minutes (one settle window and a bit)
    from the end of the window, jumping to the end of Tokyo's quiet hours (21:00–08:00 local,
    23:00 UTC) once only deferred deliveries are left, until nothing is in doubt or deferred."""
    feedback(ses, faults)
    now = NOW + timedelta(minutes=20)
    for _ in range(SETTLE_RUNS):
        settle_and_drain(world, ses, now, faults)
        with faults.off():
            total = assert_counts_match_the_ledger(planned=len(RECIPIENTS))
            _, deferred = ledger_tally()
        if not total.get("in_doubt") and not deferred:
            return total
        now = max(now, NOW + timedelta(hours=11)) if not total.get("in_doubt") else now
        now += timedelta(minutes=20)
    raise AssertionError(f"still in doubt or deferred after {SETTLE_RUNS} settle runs: {total}")


def assert_everyone_reachable_got_it_once(world, total):
    assert total["sent"] == 47 and total["in_doubt"] == 0 and total.get("failed", 0) == 0
    assert total["skipped.no_address"] == 2 and total["skipped.unsubscribed"] == 1
    assert len(world.sent_to()) == len(set(world.sent_to())) == 47  # nobody twice, nobody missed


@pytest.mark.parametrize("lost_responses", [0.0, 0.1], ids=["throttling", "and-lost-answers"])
def test_a_chunk_delivered_while_dynamodb_throttles_reaches_everyone_once_and_counts_add_up(
    world, ses, audience, dynamodb_faults, lost_responses
):
    """Given a 50-recipient chunk (2 without an address, 1 unsubscribed, 2 in quiet hours) and
    DynamoDB throttling ~30% of calls, some past botocore's retries (and in the second case
    losing the answer to 10% of the writes it applied),
    When SQS redelivers the chunk after each failed attempt and the settle job runs on time,
    Then each reachable recipient gets the email exactly once, the skips are counted with their
    reasons, and planned = sent + skipped + failed + in_doubt + pending after every attempt."""
    dynamodb_faults.lost_responses = lost_responses
    recording = RecordingSes(ses)
    body = chunk_body(RECIPIENTS, chunk_id="ann:0:0:email")

    until_it_goes_through(lambda: deliver(world, body, recording, NOW), dynamodb_faults)
    total = finish(world, recording, dynamodb_faults)

    assert_everyone_reachable_got_it_once(world, total)
    assert dynamodb_faults.share > 0.2


def test_a_crash_mid_chunk_under_throttling_still_sends_each_email_once(
    world, ses, audience, dynamodb_faults
):
    """Given DynamoDB throttling ~30% of calls,
    When the deliverer dies after its 20th SES send (timeout), SQS redelivers the chunk, and SES
    reports the emails it accepted,
    Then the 20 already sent are settled by their Send events and not sent again, the others
    go out once, and the counts add up at every step."""
    recording = RecordingSes(ses, crash_after=20)
    body = chunk_body(RECIPIENTS, chunk_id="ann:0:0:email")
    with pytest.raises(Crash):
        until_it_goes_through(lambda: deliver(world, body, recording, NOW), dynamodb_faults)
    recording.crash_after = None
    with dynamodb_faults.off():
        assert_counts_match_the_ledger(planned=len(RECIPIENTS))

    feedback(recording, dynamodb_faults)  # SES's Send events for the 20 that went out
    until_it_goes_through(
        lambda: deliver(world, body, recording, NOW + timedelta(minutes=1)), dynamodb_faults
    )
    total = finish(world, recording, dynamodb_faults)

    assert_everyone_reachable_got_it_once(world, total)


def test_an_sqs_batch_reports_only_the_chunk_that_failed_and_redelivery_sends_nothing_twice(
    world, ses, audience, dynamodb_faults, lambda_context, monkeypatch
):
    """Given the 50 recipients split over five chunks in one SQS batch, DynamoDB throttling ~30%
    of calls, and u7's partition hot (every request naming it throttled) for a while,
    When the email function runs the batch, SQS redelivers what it reports as failed, and later
    redelivers, once more, a chunk that had succeeded (at-least-once delivery),
    Then only u7's chunk is reported (the others' emails go out), the redelivered chunk sends
    once the partition cools down, no email goes out twice, and the counts add up."""
    from functions.deliver_email import app

    recording = RecordingSes(ses)
    monkeypatch.setattr(app, "delivery_ports", world.ports)
    monkeypatch.setattr("cohortcast.storage.aws.ses_client", lambda: recording)
    chunks = {
        f"m{i}": chunk_body(RECIPIENTS[i * 10 : (i + 1) * 10], chunk_id=f"ann:0:{i}:email") for i in range(5)
    }

    def run(messages):
        """The message ids SQS will redeliver: those reported, or all when the invocation fails."""
        event = {"Records": [_record(message_id, chunks[message_id]) for message_id in messages]}
        try:
            failed = {
                f["itemIdentifier"] for f in app.lambda_handler(event, lambda_context)["batchItemFailures"]
            }
        except BatchProcessingError:  # every record failed: Powertools fails the invocation
            failed = set(messages)
        with dynamodb_faults.off():
            assert_counts_match_the_ledger(planned=len(RECIPIENTS))
        return failed

    dynamodb_faults.hot_keys = {"DLV#u7"}
    assert run(chunks) == {"m0"}
    assert run({"m0"}) == {"m0"}  # still hot: reported again, nothing of it sent
    dynamodb_faults.hot_keys = set()
    assert run({"m0"}) == set()
    assert run({"m3"}) == set()  # a duplicate delivery of a chunk that had gone through

    total = finish(world, recording, dynamodb_faults)
    assert_everyone_reachable_got_it_once(world, total)
    assert sum(n for (_, fault), n in dynamodb_faults.injected.items() if fault == "hot partition") > 0


def test_a_ledger_transaction_throttled_past_botocores_retries_is_retried_not_failed(world, dynamodb_faults):
    """Given the recipient's partition answers ThrottlingException to every attempt botocore
    makes (six) and then cools down,
    When the deliverer writes a claim,
    Then the ledger backs off and writes it: the chunk is not failed for a passing throttle."""
    from cohortcast.storage import delivery as store

    dynamodb_faults.rate = 0.0
    dynamodb_faults.hot_keys, dynamodb_faults.hot_code, dynamodb_faults.hot_requests = (
        {"DLV#u9"},
        "ThrottlingException",
        6,
    )
    key = store.record_key("u9", "ann_x", "email")
    write = store.LedgerWrite(
        items=[store.put({**key, "state": "claimed"}, "attribute_not_exists(pk)")],
        counts={("ann_x", None): {"in_doubt": 1}},
    )
    slept = []

    assert store.write_all([write], sleep=slept.append) == [write]
    assert slept and dynamodb_faults.hot_requests == 0
    assert store.get_item(key)["state"] == "claimed"
