"""Counts add up after a crash between any two writes: the counter deltas commit in the same
DynamoDB transaction as the ledger changes they describe, so redelivery and the settle job
finish the work without losing or double-counting anything."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import boto3
import pytest

from cohortcast.delivery import ledger
from cohortcast.delivery.consumer import deliver_email_body
from cohortcast.delivery.settle import settle_due
from cohortcast.feedback.service import apply_events
from cohortcast.storage import announcements as counters_store
from cohortcast.storage import aws as storage_aws
from cohortcast.storage import delivery as store
from tests.component.delivery_pipeline.conftest import (
    ANNOUNCEMENT_ID,
    NOW,
    SEGMENT,
    chunk_body,
    no_sleep,
    users,
)

RECIPIENTS = [f"u{i}" for i in range(50)]


class Crash(BaseException):
    """The invocation dies (timeout, out of memory): nothing after this point runs."""


class CrashAt:
    """Raises `Crash` right after the `n`-th call of `operation` completed (it took effect)."""

    def __init__(self, operation: str, n: int) -> None:
        self.operation, self.n, self.seen, self.fired = operation, n, 0, False
        self._lock = threading.Lock()

    def __call__(self, event_name: str, **_: object) -> None:
        if not event_name.endswith("." + self.operation):
            return
        with self._lock:
            self.seen += 1
            fire = self.seen == self.n and not self.fired
            self.fired = self.fired or fire
        if fire:
            raise Crash(f"after {self.operation} #{self.n}")

    def attach(self, *clients: object) -> None:
        for client in clients:
            client.meta.events.register("after-call", self)  # type: ignore[attr-defined]

    def detach(self, *clients: object) -> None:
        for client in clients:
            client.meta.events.unregister("after-call", self)  # type: ignore[attr-defined]


def deliver(world, body, ses, now):
    return deliver_email_body(body, now=now, ports=world.ports(), ses=ses, sleep=no_sleep)


def settle_and_deliver(world, ses, now):
    """The settle job at `now`, then the email consumer drains what it queued."""
    sqs = boto3.client("sqs")
    url = world.aws.url("EmailQueue")
    settle_due(now)
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            deliver(world, message["Body"], ses, now)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def ledger_tally() -> tuple[Counter[str], int]:
    """The counters as the announcement's delivery records imply them (states and engagement
    flags), and how many records are still pending (deferred)."""
    table = storage_aws.table(world_table())
    items = table.scan(
        FilterExpression="kind = :kind AND announcement_id = :id",
        ExpressionAttributeValues={":kind": "delivery", ":id": ANNOUNCEMENT_ID},
    )["Items"]
    tally: Counter[str] = Counter()
    deferred = 0
    for item in items:
        record = store.delivery_from_item(item)
        tally.update(record.events)  # delivered, opened, ... count once per record
        name = ledger.counter_of(record.state, record.reason)
        if name:
            tally[name] += 1
        else:
            deferred += 1
    return tally, deferred


def world_table() -> str:
    from cohortcast.config import get_settings

    return get_settings().data_table


def assert_counts_match_the_ledger(planned: int) -> dict[str, int]:
    total, by_segment = counters_store.get_counts(ANNOUNCEMENT_ID)
    tally, deferred = ledger_tally()
    counted = {name: value for name, value in total.items() if value and name != "planned"}
    assert counted == dict(tally), (counted, tally)
    assert by_segment[SEGMENT] == total  # every recipient is in the one segment
    done = sum(v for name, v in tally.items() if name not in ledger.ENGAGEMENT)
    without_record = len(RECIPIENTS) - done - deferred
    # planned = sent + skipped + failed + in_doubt + pending, where pending is exactly the
    # recipients without a record yet plus the deferred ones
    assert total["planned"] == planned
    assert total["planned"] - done == without_record + deferred
    assert without_record >= 0
    return total


@pytest.fixture
def audience(world):
    """50 recipients: 2 without an address, 1 unsubscribed from everything, 2 in Tokyo (inside
    the 21:00–08:00 quiet hours at noon UTC: deferred), 45 who get the email now."""
    people = users(50)
    people["u0"].pop("email")
    people["u1"].pop("email")
    people["u3"]["timezone"] = people["u4"]["timezone"] = "Asia/Tokyo"
    world.add_users(people)
    world.settings.quiet_hours = ("21:00", "08:00")
    store.update_preferences(
        "u2",
        unsubscribed_all=True,
        topics_off_add=frozenset(),
        topics_off_remove=frozenset(),
        updated_at="2026-11-01T00:00:00.000Z",
    )
    counters_store.add_counts(ANNOUNCEMENT_ID, SEGMENT, {"planned": len(RECIPIENTS)})  # the publish side
    return people


# The chunk's writes: one transaction of claims, skips and deferrals (95 ledger items + 2
# counter items), 45 SES sends, one transaction of outcomes.
CRASH_POINTS = [
    ("TransactWriteItems", 1),  # after the claims, before any send
    ("SendEmail", 1),  # after the first SES send
    ("SendEmail", 30),  # in the middle of the sends
    ("SendEmail", 45),  # after the last send, before the outcomes
    ("TransactWriteItems", 2),  # after the outcomes: the message is redelivered anyway
]


@pytest.mark.parametrize(("operation", "n"), CRASH_POINTS, ids=[f"{o}-{n}" for o, n in CRASH_POINTS])
def test_a_crash_between_any_two_writes_leaves_counts_that_add_up_and_settle(
    world, ses, audience, operation, n
):
    crash = CrashAt(operation, n)
    dynamodb = storage_aws.dynamodb().meta.client
    crash.attach(dynamodb, ses)
    body = chunk_body(RECIPIENTS, chunk_id="ann:0:0:email")
    try:
        with pytest.raises(Crash):
            deliver(world, body, ses, NOW)
    finally:
        crash.detach(dynamodb, ses)
    assert crash.fired
    assert_counts_match_the_ledger(planned=50)

    deliver(world, body, ses, NOW + timedelta(seconds=30))  # SQS redelivers the message
    assert_counts_match_the_ledger(planned=50)

    # no SES event arrives for claims left in doubt (moto emits none): the settle job resends
    # them after the window; the Tokyo recipients go out when their quiet hours end (23:00 UTC)
    settle_and_deliver(world, ses, NOW + timedelta(minutes=20))
    assert_counts_match_the_ledger(planned=50)
    settle_and_deliver(world, ses, NOW + timedelta(hours=11, minutes=5))
    total = assert_counts_match_the_ledger(planned=50)

    assert total["sent"] == 47 and total["in_doubt"] == 0
    assert total["skipped.no_address"] == 2 and total["skipped.unsubscribed"] == 1
    assert len(set(world.sent_to())) == 47  # every reachable recipient got the announcement


def test_a_crash_while_resuming_claims_in_doubt_is_settled_by_the_next_run(world, ses, audience):
    body = chunk_body(RECIPIENTS, chunk_id="ann:0:0:email")
    crash = CrashAt("TransactWriteItems", 1)
    dynamodb = storage_aws.dynamodb().meta.client
    crash.attach(dynamodb)
    try:
        with pytest.raises(Crash):  # every claim in doubt
            deliver(world, body, ses, NOW)
    finally:
        crash.detach(dynamodb)

    crash = CrashAt("SendEmail", 10)  # the settle run's resend dies half way
    crash.attach(ses)
    try:
        with pytest.raises(Crash):
            settle_and_deliver(world, ses, NOW + timedelta(minutes=20))
    finally:
        crash.detach(ses)
    assert_counts_match_the_ledger(planned=50)

    boto3.client("sqs").purge_queue(QueueUrl=world.aws.url("EmailQueue"))  # the lost message
    settle_and_deliver(world, ses, NOW + timedelta(minutes=40))
    settle_and_deliver(world, ses, NOW + timedelta(hours=11, minutes=5))
    total = assert_counts_match_the_ledger(planned=50)
    assert total["sent"] == 47 and total["in_doubt"] == 0


def test_a_crash_while_applying_ses_events_counts_each_event_once_after_redelivery(world, ses, audience):
    from tests.component.delivery_pipeline.test_in_doubt_and_poison import Crash as SendCrash
    from tests.component.delivery_pipeline.test_in_doubt_and_poison import CrashAfterSend, send_event

    crashing = CrashAfterSend(ses)
    with pytest.raises(SendCrash):
        deliver(world, chunk_body(["u5"], chunk_id="ann:0:0:email"), crashing, NOW)
    (request,), (message_id,) = crashing.requests, crashing.message_ids
    events = [send_event(request, message_id), send_event(request, message_id, "Delivery")]

    crash = CrashAt("TransactWriteItems", 1)
    dynamodb = storage_aws.dynamodb().meta.client
    crash.attach(dynamodb)
    try:
        with pytest.raises(Crash):  # the update and its counts committed; the process died
            apply_events(events, now=NOW)
    finally:
        crash.detach(dynamodb)
    apply_events(events, now=NOW)  # SQS redelivers the batch

    total = assert_counts_match_the_ledger(planned=50)
    assert total["sent"] == 1 and total["delivered"] == 1 and total["in_doubt"] == 0


def test_a_user_planned_twice_by_a_moving_snapshot_is_planned_once_when_delivered(world, ses):
    """u0 moved from segment A to segment B while the snapshot paged: pages 0 and 1 both
    planned them. The second chunk finds the first's record and takes its `planned` back, once,
    however often either chunk is redelivered — and a crash right after doing so changes nothing."""
    seg_a, seg_b = "seg_A", "seg_B"
    world.add_users(users(2))
    counters_store.add_counts(ANNOUNCEMENT_ID, seg_a, {"planned": 2})  # page 0: u0, u1 in A
    counters_store.add_counts(ANNOUNCEMENT_ID, seg_b, {"planned": 1})  # page 1: u0 again, in B
    first = chunk_body(["u0", "u1"], segment_id=seg_a, chunk_id=f"{ANNOUNCEMENT_ID}:0:0:email")
    second = chunk_body(["u0"], segment_id=seg_b, chunk_id=f"{ANNOUNCEMENT_ID}:1:0:email")

    deliver(world, first, ses, NOW)
    crash = CrashAt("TransactWriteItems", 2)  # 1: the claim, cancelled (the record exists)
    dynamodb = storage_aws.dynamodb().meta.client
    crash.attach(dynamodb)
    try:
        with pytest.raises(Crash):  # the discount committed, then the invocation died
            deliver(world, second, ses, NOW)
    finally:
        crash.detach(dynamodb)
    assert counters_store.get_counts(ANNOUNCEMENT_ID)[0]["planned"] == 2
    for body in (second, first, second):  # redeliveries
        deliver(world, body, ses, NOW + timedelta(minutes=1))

    total, by_segment = counters_store.get_counts(ANNOUNCEMENT_ID)
    assert total["planned"] == 2 and total["sent"] == 2  # pending 0, not stuck at 1
    assert by_segment[seg_a]["planned"] == 2 and by_segment[seg_a]["sent"] == 2
    assert by_segment[seg_b]["planned"] == 0
    assert world.sent_to() == ["u0@example.net", "u1@example.net"]


class ConflictingClient:
    """The resource's client, whose transactions first meet `conflicts` TransactionConflicts on
    the hot counters item (another deliverer committing at the same instant)."""

    def __init__(self, real, conflicts: int) -> None:
        self.real, self.conflicts, self.calls = real, conflicts, 0

    def transact_write_items(self, TransactItems):
        from botocore.exceptions import ClientError

        self.calls += 1
        if self.conflicts:
            self.conflicts -= 1
            reasons = [{"Code": "None"}] * (len(TransactItems) - 1) + [{"Code": "TransactionConflict"}]
            error = {"Code": "TransactionCanceledException", "Message": "conflict"}
            raise ClientError({"Error": error, "CancellationReasons": reasons}, "TransactWriteItems")
        return self.real.transact_write_items(TransactItems=TransactItems)

    def __getattr__(self, name):
        return getattr(self.real, name)


@pytest.mark.parametrize("conflicts", [2, 10])
def test_a_conflict_on_the_counters_is_retried_or_fails_the_chunk_never_drops_a_claim(
    world, ses, monkeypatch, conflicts
):
    world.add_users(users(3))
    counters_store.add_counts(ANNOUNCEMENT_ID, SEGMENT, {"planned": 3})
    client = ConflictingClient(storage_aws.dynamodb().meta.client, conflicts)
    monkeypatch.setattr(store, "_client", lambda: client)
    monkeypatch.setattr(store.time, "sleep", lambda _s: None)
    body = chunk_body(["u0", "u1", "u2"])
    if conflicts > 5:  # persists: the chunk fails whole and SQS redelivers it
        with pytest.raises(Exception, match="conflict"):
            deliver(world, body, ses, NOW)
        assert ledger_tally() == (Counter(), 0)
        client.conflicts = 0
    deliver(world, body, ses, NOW)
    assert counters_store.get_counts(ANNOUNCEMENT_ID)[0] == {"planned": 3, "in_doubt": 0, "sent": 3}
