"""The email pipeline: exactly once per recipient, skips with reasons, counts that add up."""

from __future__ import annotations

import email
import email.policy
import random
from datetime import timedelta

import pytest
from botocore.exceptions import ClientError

from cohortcast.delivery.consumer import RetryLater, deliver_email_body
from tests.component.delivery_pipeline.conftest import (
    NOW,
    SEGMENT,
    Cap,
    StandInAnnouncement,
    chunk_body,
    no_sleep,
    users,
)


def deliver(world, body, ses, now=NOW):
    return deliver_email_body(body, now=now, ports=world.ports(), ses=ses, sleep=no_sleep)


def test_a_chunk_sends_one_multipart_email_per_recipient_with_unsubscribe_headers(world, ses):
    world.add_users(users(3))
    result = deliver(world, chunk_body(["u0", "u1", "u2"]), ses)

    assert world.sent_to() == ["u0@example.net", "u1@example.net", "u2@example.net"]
    assert result.counts["sent"] == 3
    assert world.counters.get("in_doubt") == 0
    parsed = email.message_from_string(world.sent()[0].raw_data, policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert parsed["List-Unsubscribe"].startswith("<https://acme.example/u/")
    assert "mailto:news@example.com" in parsed["List-Unsubscribe"]
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Subject"].startswith("Hello N")


def test_the_same_message_delivered_twice_sends_one_email(world, ses):
    world.add_users(users(2))
    body = chunk_body(["u0", "u1"])
    deliver(world, body, ses)
    second = deliver(world, body, ses)

    assert world.sent_to() == ["u0@example.net", "u1@example.net"]
    assert second.counts == {}
    assert world.counters.total == {"in_doubt": 0, "sent": 2}


def test_a_recipient_listed_twice_in_a_chunk_gets_one_email(world, ses):
    world.add_users(users(1))
    deliver(world, chunk_body(["u0", "u0"]), ses)
    assert world.sent_to() == ["u0@example.net"]


class Throttling:
    """SES client wrapper: 30% of calls answer TooManyRequestsException."""

    def __init__(self, ses, rate=0.3, seed=7):
        self.ses, self.rate, self.random, self.calls = ses, rate, random.Random(seed), 0

    def send_email(self, **request):
        self.calls += 1
        if self.random.random() < self.rate:
            raise ClientError(
                {
                    "Error": {"Code": "TooManyRequestsException", "Message": "slow down"},
                    "ResponseMetadata": {"HTTPStatusCode": 429},
                },
                "SendEmail",
            )
        return self.ses.send_email(**request)


def test_throttling_on_30_percent_of_calls_still_sends_everyone_exactly_once(world, ses):
    world.add_users(users(50))
    body = chunk_body([f"u{i}" for i in range(50)])
    throttled = Throttling(ses, rate=0.3)
    redeliveries = 0
    while True:  # SQS redelivers the message while the consumer reports it failed
        try:
            deliver(world, body, throttled)
            break
        except RetryLater:
            redeliveries += 1
            assert redeliveries < 20
    assert world.sent_to() == sorted(f"u{i}@example.net" for i in range(50))
    assert world.counters.get("sent") == 50
    assert world.counters.get("failed") == 0
    assert world.counters.get("in_doubt") == 0


def test_throttling_that_never_ends_withdraws_the_claims_and_retries_the_message(world, ses):
    world.add_users(users(2))
    always = Throttling(ses, rate=1.0)
    with pytest.raises(RetryLater):
        deliver(world, chunk_body(["u0", "u1"]), always)
    assert world.sent() == []
    assert world.counters.total.get("in_doubt", 0) == 0  # back to pending, not failed
    assert world.counters.get("failed") == 0
    deliver(world, chunk_body(["u0", "u1"]), ses)
    assert world.sent_to() == ["u0@example.net", "u1@example.net"]


class Rejecting:
    def __init__(self, ses):
        self.ses = ses

    def send_email(self, **request):
        if request["Destination"]["ToAddresses"] == ["u1@example.net"]:
            raise ClientError(
                {
                    "Error": {"Code": "MessageRejected", "Message": "no"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "SendEmail",
            )
        return self.ses.send_email(**request)


def test_other_ses_errors_are_recorded_failed_with_the_reason_and_not_retried(world, ses):
    from cohortcast.storage import delivery as store

    world.add_users(users(2))
    deliver(world, chunk_body(["u0", "u1"]), Rejecting(ses))
    assert world.sent_to() == ["u0@example.net"]
    assert world.counters.get("failed") == 1
    item = store.get_item(
        store.record_key("u1", world.announcements["ann_01JDELIVERY0000000000000001"].id, "email")
    )
    assert item["state"] == "failed" and item["reason"] == "MessageRejected"
    assert "due_pk" not in item


def test_skips_are_recorded_with_reasons_and_counts_add_up(world, ses):
    from cohortcast.delivery.email import email_hash
    from cohortcast.storage import delivery as store

    world.add_users(
        {
            "ok": {"email": "ok@example.net"},
            "noaddr": {"name": "no email"},
            "bad": {"email": "not-an-address"},
            "suppressed": {"email": "Bounced@Example.net"},
            "unsub_all": {"email": "all@example.net"},
            "unsub_topic": {"email": "topic@example.net"},
        }
    )
    store.put_suppressions(
        [{"email_hash": email_hash("bounced@example.net"), "reason": "bounce", "created_at": "x"}]
    )
    store.update_preferences(
        "unsub_all",
        unsubscribed_all=True,
        topics_off_add=frozenset(),
        topics_off_remove=frozenset(),
        updated_at="x",
    )
    store.update_preferences(
        "unsub_topic",
        unsubscribed_all=None,
        topics_off_add=frozenset({"product-updates"}),
        topics_off_remove=frozenset(),
        updated_at="x",
    )
    recipients = ["ok", "noaddr", "bad", "suppressed", "unsub_all", "unsub_topic", "missing_profile"]
    deliver(world, chunk_body(recipients), ses)

    assert world.sent_to() == ["ok@example.net"]
    assert world.counters.skipped() == {
        "no_address": 2,
        "invalid_address": 1,
        "suppressed": 1,
        "unsubscribed": 2,
    }
    planned = len(recipients)
    assert world.counters.settled_total() == planned  # nothing pending, nothing in doubt
    assert world.counters.by_segment[SEGMENT]["sent"] == 1


def test_a_cancelled_announcement_skips_everyone_with_cancelled(world, ses):
    world.add_users(users(2))
    world.announcements["ann_01JDELIVERY0000000000000001"].status = "cancelled"
    deliver(world, chunk_body(["u0", "u1"]), ses)
    assert world.sent() == []
    assert world.counters.skipped() == {"cancelled": 2}


def test_the_frequency_cap_skips_after_n_announcements_and_critical_bypasses_it(world, ses):
    world.settings.frequency_cap = Cap(count=2, days=7)
    world.add_users(users(1))
    for index in range(4):
        announcement_id = f"ann_01JCAP{index:020d}"
        world.announcements[announcement_id] = StandInAnnouncement(
            id=announcement_id, priority="critical" if index == 3 else "normal"
        )
        deliver(
            world, chunk_body(["u0"], announcement_id=announcement_id), ses, now=NOW + timedelta(hours=index)
        )
    assert len(world.sent()) == 3  # two normal, the third normal is capped, the critical goes out
    assert world.counters.skipped() == {"frequency_cap": 1}


def test_the_cap_window_slides(world, ses):
    world.settings.frequency_cap = Cap(count=1, days=7)
    world.add_users(users(1))
    for index, when in enumerate([NOW, NOW + timedelta(days=8)]):
        announcement_id = f"ann_01JSLIDE{index:019d}"
        world.announcements[announcement_id] = StandInAnnouncement(id=announcement_id)
        deliver(world, chunk_body(["u0"], announcement_id=announcement_id), ses, now=when)
    assert len(world.sent()) == 2


def test_quiet_hours_defer_to_their_end_in_the_recipients_timezone_then_the_settle_job_sends(world, ses):
    import boto3

    from cohortcast.delivery.settle import settle_due
    from cohortcast.storage import delivery as store

    world.settings.quiet_hours = ("21:00", "08:00")
    # 12:00 UTC is 21:00 in Tokyo (quiet) and 07:00 in New York (quiet), 13:00 in Berlin (not quiet)
    world.add_users(
        {
            "tokyo": {"email": "t@example.net", "timezone": "Asia/Tokyo"},
            "newyork": {"email": "n@example.net", "timezone": "America/New_York"},
            "berlin": {"email": "b@example.net", "timezone": "Europe/Berlin"},
        }
    )
    deliver(world, chunk_body(["tokyo", "newyork", "berlin"]), ses)
    assert world.sent_to() == ["b@example.net"]
    deferred = store.get_item(store.record_key("newyork", "ann_01JDELIVERY0000000000000001", "email"))
    assert deferred["state"] == "deferred" and deferred["due_at"] == "2026-11-23T13:00:00.000Z"
    assert world.counters.skipped() == {}

    sqs = boto3.client("sqs")
    url = world.aws.url("EmailQueue")
    for hours, expected in (
        (1, ["b@example.net", "n@example.net"]),
        (12, ["b@example.net", "n@example.net", "t@example.net"]),
    ):
        later = NOW + timedelta(hours=hours, minutes=1)
        settle_due(later)
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            deliver(world, message["Body"], ses, now=later)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        assert world.sent_to() == expected
    assert world.counters.get("sent") == 3


def test_a_critical_announcement_ignores_quiet_hours(world, ses):
    world.settings.quiet_hours = ("00:00", "23:59")
    world.announcements["ann_01JDELIVERY0000000000000001"].priority = "critical"
    world.add_users(users(1))
    deliver(world, chunk_body(["u0"]), ses)
    assert len(world.sent()) == 1


def test_personalisation_failure_fails_that_recipient_only(world, ses):
    world.announcements["ann_01JDELIVERY0000000000000001"].body = "You are {{ user.age + 1 }}"
    world.add_users(
        {"good": {"email": "g@example.net", "age": 30}, "bad": {"email": "x@example.net", "age": "ten"}}
    )
    deliver(world, chunk_body(["good", "bad"]), ses)
    assert world.sent_to() == ["g@example.net"]
    assert world.counters.get("failed") == 1
