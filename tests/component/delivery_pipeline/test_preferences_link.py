"""The `/u/{token}` link: preferences page, RFC 8058 one-click, form submit, tampered tokens."""

from __future__ import annotations

import email
import email.policy
import re
from typing import Any

import pytest

from cohortcast.delivery.consumer import deliver_email_body
from tests.component.delivery_pipeline.conftest import (
    ANNOUNCEMENT_ID,
    NOW,
    StandInAnnouncement,
    chunk_body,
    no_sleep,
    users,
)


def http_event(
    method: str, path: str, body: str = "", content_type: str = "application/x-www-form-urlencoded"
) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": f"{method} /u/{{token}}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": content_type, "host": "acme.example"},
        "requestContext": {
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "t",
            },
            "requestId": "r1",
            "routeKey": f"{method} /u/{{token}}",
            "stage": "$default",
        },
        "pathParameters": {"token": path.rsplit("/", 1)[1]},
        "body": body,
        "isBase64Encoded": False,
    }


@pytest.fixture
def link(world, ses):
    """Send one announcement to u0 and return the unsubscribe path from its List-Unsubscribe header."""
    world.add_users(users(2))
    deliver_email_body(chunk_body(["u0", "u1"]), now=NOW, ports=world.ports(), ses=ses, sleep=no_sleep)
    message = next(m for m in world.sent() if "u0@example.net" in m.destinations)
    parsed = email.message_from_string(message.raw_data, policy=email.policy.default)
    return re.search(r"<https://acme\.example(/u/[A-Za-z0-9_-]+)>", parsed["List-Unsubscribe"]).group(1)


def call(method, path, lambda_context, body="", content_type="application/x-www-form-urlencoded"):
    from functions.preferences import app

    return app.lambda_handler(http_event(method, path, body, content_type), lambda_context)


def test_the_page_shows_the_topics_the_user_received_and_everything(link, lambda_context):
    response = call("GET", link, lambda_context)
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"].startswith("text/html")
    assert 'value="product-updates"' in response["body"]
    assert "u•••@example.net" in response["body"]
    assert "Unsubscribe from all emails" in response["body"]


def test_one_click_unsubscribes_from_the_topic_and_the_next_announcement_skips_the_user(
    world, ses, link, lambda_context
):
    response = call("POST", link, lambda_context, body="List-Unsubscribe=One-Click")
    assert response["statusCode"] == 200

    second = "ann_01JSECOND000000000000000001"
    world.announcements[second] = StandInAnnouncement(id=second)
    before = len(world.sent())
    deliver_email_body(
        chunk_body(["u0", "u1"], announcement_id=second),
        now=NOW,
        ports=world.ports(),
        ses=ses,
        sleep=no_sleep,
    )
    assert len(world.sent()) == before + 1  # u1 only
    assert world.counters.skipped() == {"unsubscribed": 1}

    other_topic = "ann_01JTHIRD0000000000000000001"
    world.announcements[other_topic] = StandInAnnouncement(id=other_topic, topic="billing")
    deliver_email_body(
        chunk_body(["u0"], announcement_id=other_topic), now=NOW, ports=world.ports(), ses=ses, sleep=no_sleep
    )
    assert len(world.sent()) == before + 2  # another topic still reaches u0


def test_the_form_can_unsubscribe_from_everything(world, ses, link, lambda_context):
    response = call(
        "POST", link, lambda_context, body="offered=product-updates&topic=product-updates&unsubscribe_all=1"
    )
    assert response["statusCode"] == 200
    assert "unsubscribed from all emails" in response["body"]
    other = "ann_01JOTHER0000000000000000001"
    world.announcements[other] = StandInAnnouncement(id=other, topic=None)
    deliver_email_body(
        chunk_body(["u0"], announcement_id=other), now=NOW, ports=world.ports(), ses=ses, sleep=no_sleep
    )
    assert world.counters.skipped() == {"unsubscribed": 1}


@pytest.mark.parametrize(
    "mangle",
    [lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), lambda t: t[:20], lambda t: "x" + t],
)
def test_a_tampered_token_is_a_400_page_and_changes_nothing(world, link, lambda_context, mangle):
    from cohortcast.storage import delivery as store

    token = link.rsplit("/", 1)[1]
    bad = f"/u/{mangle(token)}"
    for method, body in (("GET", ""), ("POST", "List-Unsubscribe=One-Click")):
        response = call(method, bad, lambda_context, body=body)
        assert response["statusCode"] == 400
        assert response["headers"]["Content-Type"].startswith("text/html")
        assert "invalid or tampered" in response["body"]
    assert store.get_item(store.preferences_key("u0")).get("unsubscribed_all") is not True
    assert ANNOUNCEMENT_ID  # the link was for this announcement's topic


def test_erasing_a_user_deletes_their_deliveries_and_keeps_only_a_hash_if_they_opted_out(
    world, link, lambda_context
):
    from cohortcast.delivery.email import email_hash
    from cohortcast.services.erasure import erase_user
    from cohortcast.storage import delivery as store

    call("POST", link, lambda_context, body="offered=product-updates&unsubscribe_all=1")
    erasure = erase_user("u0", NOW)
    assert erasure.deliveries == 2  # the delivery record and the preferences item
    assert store.user_items("u0") == []
    assert store.is_suppressed(email_hash("u0@example.net"))
    erase_user("u1", NOW)  # did not opt out: nothing of them is kept
    assert not store.is_suppressed(email_hash("u1@example.net"))


def test_keeping_one_topic_and_dropping_another_stores_both_choices(world, link, lambda_context):
    from cohortcast.storage import delivery as store

    store.update_preferences(
        "u0", unsubscribed_all=None, topics_off_add=frozenset({"billing"}),
        topics_off_remove=frozenset(), updated_at="2026-11-01T00:00:00+00:00",
    )  # fmt: skip
    form = "offered=billing&offered=product-updates&topic=billing"
    response = call("POST", link, lambda_context, body=form)
    assert response["statusCode"] == 200, response["body"]
    assert "Your preferences are saved." in response["body"]
    assert store.get_item(store.preferences_key("u0"))["topics_off"] == {"product-updates"}


def test_a_fault_while_saving_is_an_html_error_page(world, link, lambda_context, monkeypatch):
    from botocore.exceptions import ClientError

    from cohortcast.storage import delivery as store

    def throttled(*_args, **_kwargs):
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "UpdateItem")

    monkeypatch.setattr(store, "update_preferences", throttled)
    response = call("POST", link, lambda_context, body="offered=product-updates")
    assert response["statusCode"] == 500
    assert response["headers"]["Content-Type"].startswith("text/html")
    assert "Something went wrong on our side" in response["body"]
    assert "slow down" not in response["body"]
