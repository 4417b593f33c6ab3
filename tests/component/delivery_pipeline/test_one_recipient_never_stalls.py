"""One recipient never stalls the others: a bad address, a template that fails or runs over its
budget for their traits, or a record that keeps crashing is that recipient's outcome alone, and
counts still add up."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import boto3
import pytest

from cohortcast.delivery.chunk import MAX_ATTEMPTS
from cohortcast.delivery.consumer import deliver_email_body, deliver_sns_body
from cohortcast.delivery.email import sendable_address
from cohortcast.delivery.policy import InvalidAddress
from cohortcast.delivery.settle import settle_due
from cohortcast.storage import delivery as store
from tests.component.delivery_pipeline.conftest import ANNOUNCEMENT_ID, NOW, chunk_body, no_sleep, users

POISON_EMAILS = {
    "line_separator": "bad@example.com\u2028Bcc:x@evil.example",
    "encoded_word": "=?utf-8?q?bad?=@example.com",
    "utf8_local_part": "zoë@example.com",
    "not_a_string": 42,
    "two_ats": "a@b@example.com",
    "header_injection": "a@example.com\r\nBcc: x@evil.example",
    "no_tld": "a@localhost",
}


def deliver(world, body, ses, now=NOW):
    return deliver_email_body(body, now=now, ports=world.ports(), ses=ses, sleep=no_sleep)


def record(user_id, channel="email"):
    return store.get_item(store.record_key(user_id, ANNOUNCEMENT_ID, channel))


def test_poison_email_traits_are_skipped_invalid_address_and_everyone_else_is_sent(world, ses):
    world.add_users({**users(3), **{name: {"email": value} for name, value in POISON_EMAILS.items()}})
    recipients = ["u0", "u1", "u2", *POISON_EMAILS]

    result = deliver(world, chunk_body(recipients), ses)

    assert world.sent_to() == ["u0@example.net", "u1@example.net", "u2@example.net"]
    assert result.counts["sent"] == 3
    assert world.counters.skipped() == {"invalid_address": len(POISON_EMAILS)}
    assert world.counters.settled_total() == len(recipients)  # planned = sent + skipped: none pending
    assert {record(name)["reason"] for name in POISON_EMAILS} == {"invalid_address"}


def test_an_international_domain_is_sent_punycode_encoded(world, ses):
    world.add_users({"intl": {"email": "Ok@Bücher.example"}})
    deliver(world, chunk_body(["intl"]), ses)
    assert world.sent_to() == ["Ok@xn--bcher-kva.example"]


@pytest.mark.parametrize(
    ("given", "sendable"),
    [
        ("ada@example.com", "ada@example.com"),
        (" ada+news@Example.COM ", "ada+news@example.com"),
        ("ok@bücher.example", "ok@xn--bcher-kva.example"),
        ("ok@münchen.de.", "ok@xn--mnchen-3ya.de"),
    ],
)
def test_sendable_addresses_are_ascii_with_an_idna_domain(given, sendable):
    assert sendable_address(given) == sendable


def test_an_international_address_has_one_suppression_hash_as_a_trait_as_sent_and_as_ses_reports_it():
    from cohortcast.delivery.email import email_hash

    assert email_hash("Ok@Bücher.example") == email_hash("ok@xn--bcher-kva.example")
    assert email_hash(" Ada@Example.com") == email_hash("ada@example.com")


@pytest.mark.parametrize("value", [v for v in POISON_EMAILS.values() if isinstance(v, str)])
def test_unsendable_addresses_say_why_without_repeating_the_address(value):
    with pytest.raises(InvalidAddress) as raised:
        sendable_address(value)
    assert value not in str(raised.value)


@pytest.mark.parametrize(
    ("body", "traits"),
    [
        ("{{ user.tags | dictsort }}", {"tags": [1]}),  # AttributeError inside a filter
        ("{{ '%(name)s' % user.d }}", {"d": {}}),  # KeyError
        ("{{ user.t | slice(user.n | default(1)) | list }}", {"t": [1], "n": 0}),  # ZeroDivisionError
        ("{{ 'x' * user.n }}", {"n": 10**9}),  # over the personalisation budget
    ],
    ids=["attribute-error", "key-error", "zero-division", "budget"],
)
def test_a_template_failing_for_one_recipients_traits_fails_only_that_recipient(world, ses, body, traits):
    world.announcements[ANNOUNCEMENT_ID].body = "Hello\n\n" + body
    world.add_users({"good": {"email": "good@example.net"}, "odd": {"email": "odd@example.net", **traits}})

    deliver(world, chunk_body(["good", "odd"]), ses)

    assert world.sent_to() == ["good@example.net"]
    assert record("odd")["state"] == "failed" and record("odd")["reason"].startswith("render: ")
    assert world.counters.total == {"in_doubt": 0, "sent": 1, "failed": 1}


def test_a_poison_recipient_does_not_make_the_chunk_a_batch_item_failure(
    world, ses, lambda_context, monkeypatch
):
    from functions.deliver_email import app

    from .test_in_doubt_and_poison import _record

    world.add_users({**users(2), "poison": {"email": POISON_EMAILS["line_separator"]}})
    monkeypatch.setattr(app, "delivery_ports", world.ports)
    monkeypatch.setattr("cohortcast.storage.aws.ses_client", lambda: ses)
    event = {"Records": [_record("m1", chunk_body(["u0", "poison", "u1"]))]}

    assert app.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert world.sent_to() == ["u0@example.net", "u1@example.net"]


def test_a_timezone_trait_too_long_for_a_zone_name_falls_back_to_the_workspace_zone(world, ses):
    world.settings.quiet_hours = ("21:00", "08:00")
    world.add_users({"long": {"email": "long@example.net", "timezone": "Europe/" + "a" * 10_000}, **users(1)})
    deliver(world, chunk_body(["long", "u0"]), ses)  # 12:00 UTC: outside the quiet hours
    assert world.sent_to() == ["long@example.net", "u0@example.net"]


def test_a_policy_failure_for_one_recipient_is_their_failed_outcome(world, ses, monkeypatch):
    from cohortcast.delivery import policy

    decide = policy.decide

    def tripping(rules, audience, now):
        if audience.address == "odd@example.net":
            raise IndexError("a policy bug this recipient's data trips")
        return decide(rules, audience, now)

    monkeypatch.setattr(policy, "decide", tripping)
    world.add_users({"odd": {"email": "odd@example.net"}, **users(2)})
    deliver(world, chunk_body(["u0", "odd", "u1"]), ses)

    assert world.sent_to() == ["u0@example.net", "u1@example.net"]
    assert record("odd")["state"] == "failed" and record("odd")["reason"] == "policy: IndexError"
    assert world.counters.total == {"in_doubt": 0, "sent": 2, "failed": 1}


class Crash(Exception):
    """The invocation dies after the claim, before SES saw anything (every time)."""


class AlwaysCrashing:
    def send_email(self, **request):
        raise Crash()


def test_a_record_that_keeps_crashing_is_resumed_at_most_max_attempts_then_counted_failed(world, ses):
    world.add_users(users(1))
    sqs, url = boto3.client("sqs"), world.aws.url("EmailQueue")
    with pytest.raises(Crash):
        deliver(world, chunk_body(["u0"]), AlwaysCrashing())

    now, resumed = NOW, 0
    for _ in range(MAX_ATTEMPTS + 2):  # a few settle runs more than the cap allows
        now += timedelta(minutes=16)
        settle_due(now)
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            resumed += 1
            with contextlib.suppress(Crash):  # SQS would redeliver; settle finds it again when due
                deliver(world, message["Body"], AlwaysCrashing(), now=now)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    final = record("u0")
    assert final["state"] == "failed" and final["reason"] == "attempts_exhausted"
    assert final["attempts"] == MAX_ATTEMPTS and "due_at" not in final
    assert resumed == MAX_ATTEMPTS  # MAX_ATTEMPTS - 1 resends, then the one that records the outcome
    assert world.counters.total == {"in_doubt": 0, "failed": 1}
    assert settle_due(now + timedelta(days=1)).due == 0
    assert world.sent() == []


@pytest.fixture
def sns(aws):
    return boto3.client("sns")


def test_unusable_phone_and_endpoint_traits_are_skipped_invalid_address_for_sms_and_push(world, sns):
    app = sns.create_platform_application(Name="app", Platform="GCM", Attributes={"PlatformCredential": "k"})
    endpoint = sns.create_platform_endpoint(PlatformApplicationArn=app["PlatformApplicationArn"], Token="t1")
    world.add_users(
        {
            "good": {"phone": "+1 (415) 555-0100", "push_endpoint_arn": endpoint["EndpointArn"]},
            "arabic_digits": {"phone": "+١٤١٥٥٥٥٠١٠٠", "push_endpoint_arn": endpoint["EndpointArn"] + "\nx"},
            "numbers": {"phone": 14155550100, "push_endpoint_arn": ["arn"]},
            "none": {},
        }
    )
    for channel in ("sms", "push"):
        deliver_sns_body(
            chunk_body(["good", "arabic_digits", "numbers", "none"], channel=channel),
            now=NOW,
            ports=world.ports(),
            sns=sns,
            sleep=no_sleep,
        )
    assert world.counters.get("sent") == 2
    assert world.counters.skipped() == {"invalid_address": 4, "no_address": 2}


def test_a_push_whose_message_fails_for_one_recipient_fails_only_that_recipient(world, sns):
    app = sns.create_platform_application(Name="app", Platform="GCM", Attributes={"PlatformCredential": "k"})
    arns = [
        sns.create_platform_endpoint(PlatformApplicationArn=app["PlatformApplicationArn"], Token=t)[
            "EndpointArn"
        ]
        for t in ("t1", "t2")
    ]
    world.announcements[ANNOUNCEMENT_ID].body = "Hi {{ user.tags | dictsort }}"
    world.add_users(
        {"good": {"push_endpoint_arn": arns[0]}, "odd": {"push_endpoint_arn": arns[1], "tags": [1]}}
    )

    deliver_sns_body(
        chunk_body(["good", "odd"], channel="push"), now=NOW, ports=world.ports(), sns=sns, sleep=no_sleep
    )

    assert record("odd", "push")["state"] == "failed"
    assert world.counters.total == {"in_doubt": 0, "sent": 1, "failed": 1}
