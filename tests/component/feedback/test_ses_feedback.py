"""SES events → suppression list, ledger flags and counters, idempotently."""

from __future__ import annotations

import json

from cohortcast.delivery.consumer import deliver_email_body
from cohortcast.feedback.events import parse_body
from cohortcast.feedback.service import apply_events
from cohortcast.storage import delivery as store
from tests.component.delivery_pipeline.conftest import (
    ANNOUNCEMENT_ID,
    NOW,
    SEGMENT,
    StandInAnnouncement,
    chunk_body,
    no_sleep,
    users,
)


class Recording:
    def __init__(self, ses):
        self.ses, self.sent = ses, []

    def send_email(self, **request):
        response = self.ses.send_email(**request)
        self.sent.append((request, response["MessageId"]))
        return response


def notification(request, message_id, kind, **detail):
    """An SES event as SNS delivers it to the queue without raw delivery (the envelope)."""
    event = {
        "eventType": kind,
        "mail": {
            "messageId": message_id,
            "destination": request["Destination"]["ToAddresses"],
            "tags": {tag["Name"]: [tag["Value"]] for tag in request["EmailTags"]},
        },
        **detail,
    }
    return json.dumps({"Type": "Notification", "MessageId": "sns-1", "Message": json.dumps(event)})


def bounce(address, kind="Permanent"):
    return {"bounce": {"bounceType": kind, "bouncedRecipients": [{"emailAddress": address}]}}


def send_to(world, ses, user_ids, announcement_id=ANNOUNCEMENT_ID):
    recording = Recording(ses)
    deliver_email_body(
        chunk_body(user_ids, announcement_id=announcement_id),
        now=NOW,
        ports=world.ports(),
        ses=recording,
        sleep=no_sleep,
    )
    return recording.sent


def test_delivery_open_and_click_are_counted_once_even_when_replayed(world, ses):
    world.add_users(users(1))
    ((request, message_id),) = send_to(world, ses, ["u0"])
    bodies = [
        notification(request, message_id, kind) for kind in ("Send", "Delivery", "Open", "Open", "Click")
    ]
    events = [parse_body(body) for body in bodies]
    apply_events(events, now=NOW)
    apply_events(events, now=NOW)  # the whole batch again

    assert world.counters.total == {"in_doubt": 0, "sent": 1, "delivered": 1, "opened": 1, "clicked": 1}
    assert world.counters.by_segment[SEGMENT]["opened"] == 1
    record = store.get_item(store.record_key("u0", ANNOUNCEMENT_ID, "email"))
    assert record["events"] == {"delivered", "opened", "clicked"}


def test_a_permanent_bounce_suppresses_the_address_and_the_next_announcement_skips_it(world, ses):
    world.add_users({"u0": {"email": "U0@Example.net"}})
    ((request, message_id),) = send_to(world, ses, ["u0"])
    apply_events(
        [parse_body(notification(request, message_id, "Bounce", **bounce("u0@example.net")))],
        now=NOW,
    )
    assert world.counters.get("bounced") == 1

    second = "ann_01JSECOND000000000000000001"
    world.announcements[second] = StandInAnnouncement(id=second)
    assert send_to(world, ses, ["u0"], announcement_id=second) == []
    assert world.counters.skipped() == {"suppressed": 1}


def test_a_transient_bounce_neither_suppresses_nor_counts(world, ses):
    world.add_users(users(1))
    ((request, message_id),) = send_to(world, ses, ["u0"])
    result = apply_events(
        [parse_body(notification(request, message_id, "Bounce", **bounce("u0@example.net", "Transient")))],
        now=NOW,
    )
    assert result.suppressed == 0
    assert world.counters.get("bounced") == 0


def test_a_complaint_suppresses_and_counts(world, ses):
    world.add_users(users(1))
    ((request, message_id),) = send_to(world, ses, ["u0"])
    complaint = {"complaint": {"complainedRecipients": [{"emailAddress": "u0@example.net"}]}}
    apply_events(
        [parse_body(notification(request, message_id, "Complaint", **complaint))],
        now=NOW,
    )
    assert world.counters.get("complained") == 1
    from cohortcast.delivery.email import email_hash

    assert store.is_suppressed(email_hash("u0@example.net"))


def test_the_feedback_function_reports_a_malformed_event_as_a_batch_item_failure(
    world, ses, lambda_context, monkeypatch
):
    from functions.feedback import app

    world.add_users(users(1))
    ((request, message_id),) = send_to(world, ses, ["u0"])
    raw_event = json.loads(json.loads(notification(request, message_id, "Delivery"))["Message"])
    records = [
        {
            "messageId": "bad",
            "receiptHandle": "r1",
            "body": "{not json",
            "attributes": {},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:FeedbackQueue",
        },
        {
            "messageId": "good",
            "receiptHandle": "r2",
            "body": json.dumps(raw_event),
            "attributes": {},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:FeedbackQueue",
        },
    ]
    response = app.lambda_handler({"Records": records}, lambda_context)
    assert response == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert world.counters.get("delivered") == 1
