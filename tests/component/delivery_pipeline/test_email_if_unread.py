"""`email_if_unread_after`: every email waits (deferred, through the ledger), then goes only to
the audience members who have not read the post in the in-app feed by then."""

from dataclasses import dataclass, field
from datetime import timedelta

import boto3

from cohortcast.delivery.consumer import deliver_email_body
from cohortcast.delivery.settle import settle_due
from cohortcast.storage import delivery as delivery_store
from cohortcast.storage import feed as feed_store
from cohortcast.storage.feed import PostState, StateChange
from tests.component.delivery_pipeline.conftest import (
    ANNOUNCEMENT_ID,
    NOW,
    StandInAnnouncement,
    chunk_body,
    no_sleep,
    users,
)

WAIT = timedelta(hours=48)


@dataclass
class EmailIfUnread(StandInAnnouncement):
    channels: tuple[str, ...] = ("email", "in_app")
    unread_wait: timedelta | None = field(default=WAIT)


def read_in_app(user_id: str, at: str) -> None:
    previous = PostState(ANNOUNCEMENT_ID)
    new = PostState(ANNOUNCEMENT_ID, seen=at, read=at, segment="")
    assert feed_store.apply(user_id, [StateChange(previous, new, {None: {"in_app.read": 1}})])


def deliver_queued(world, ses, now) -> None:
    sqs = boto3.client("sqs")
    url = world.aws.url("EmailQueue")
    for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        deliver_email_body(message["Body"], now=now, ports=world.ports(), ses=ses, sleep=no_sleep)
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_the_email_waits_then_skips_who_read_it_in_app_and_sends_to_the_others(world, ses):
    world.announcements[ANNOUNCEMENT_ID] = EmailIfUnread()
    world.add_users(users(3))
    published = NOW - timedelta(hours=1)  # created_at of the stand-in announcement

    deliver_email_body(chunk_body(["u0", "u1", "u2"]), now=NOW, ports=world.ports(), ses=ses, sleep=no_sleep)
    assert world.sent() == []
    for user_id in ("u0", "u1", "u2"):
        record = delivery_store.get_item(delivery_store.record_key(user_id, ANNOUNCEMENT_ID, "email"))
        assert (record["state"], record["reason"]) == ("deferred", "unread_wait")

    read_in_app("u0", "2026-11-24T08:00:00.000Z")
    settle_due(published + WAIT - timedelta(minutes=1))  # not due yet: nothing queued
    deliver_queued(world, ses, published + WAIT - timedelta(minutes=1))
    assert world.sent() == []

    read_in_app("u1", "2026-11-25T10:59:00.000Z")  # a minute before the wait ends: still counts
    after = published + WAIT + timedelta(minutes=5)
    settle_due(after)
    deliver_queued(world, ses, after)

    assert world.sent_to() == ["u2@example.net"]
    assert world.counters.skipped()["read_in_app"] == 2
    assert world.counters.get("sent") == 1
