"""`DELETE /v1/users/{id}` leaves nothing that names the user, and a link replayed afterwards
touches only the hashed suppression entry (moto; the api, evaluate and preferences handlers)."""

from __future__ import annotations

import email
import email.policy
import json
import re
from datetime import timedelta

import pytest

from cohortcast.delivery.consumer import deliver_email_body
from cohortcast.delivery.email import email_hash
from cohortcast.ingest.service import Batch, ingest
from cohortcast.profiles.service import find_profile
from cohortcast.segments.registry import invalidate
from cohortcast.storage import aws as storage_aws
from cohortcast.storage import delivery as delivery_store
from cohortcast.storage import segments as segment_store
from tests.component.delivery_pipeline.conftest import chunk_body, no_sleep
from tests.component.delivery_pipeline.test_preferences_link import call as call_preferences
from tests.component.segments_service.conftest import api_event, stream_record
from tests.conftest import TEST_NOW
from tests.personal_data import naming, scan_all

USER = "erin-7f3a"
ANONYMOUS = "anon-erin-55"
ADDRESS = "Erin.Quill@Example.org"
OTHER = "otto-91c2"


@pytest.fixture(autouse=True)
def fresh_registry():
    invalidate()
    yield
    invalidate()


def api(method, path, lambda_context, body=None):
    from functions.api import app

    response = app.lambda_handler(api_event(method, path, body), lambda_context)
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def evaluate(lambda_context, *records):
    from functions.evaluate import app

    return app.lambda_handler({"Records": list(records)}, lambda_context)


def every_item(aws):
    return [
        item
        for logical_id in ("ProfilesTable", "EventsTable", "DataTable", "IdempotencyTable")
        for item in scan_all(storage_aws.table(aws.name(logical_id)))
    ]


def ingest_history(user_id, address, anonymous_id=None):
    """Anonymous page views merged by identify, traits with the address, logins."""
    items = []
    if anonymous_id:
        items.append(
            {"type": "page", "anonymousId": anonymous_id, "name": "pricing", "messageId": f"{user_id}-p"}
        )
    items.append(
        {
            "type": "identify",
            "userId": user_id,
            **({"anonymousId": anonymous_id} if anonymous_id else {}),
            "traits": {"email": address, "plan": "pro", "first_name": "Erin"},
            "messageId": f"{user_id}-i",
        }
    )
    items += [
        {"type": "track", "userId": user_id, "event": "login", "messageId": f"{user_id}-l{i}"}
        for i in range(3)
    ]
    result = ingest(Batch(items=items), received_at=TEST_NOW, retention_days=90)
    assert not result.rejected


@pytest.fixture
def history(world, ses, lambda_context):
    """USER (and OTHER, who must be left alone) with events, an alias, history in three
    segments (one of which they left again), one delivered email and a topic opt-out; returns
    USER's unsubscribe link as the email carries it."""
    for user_id, address, anonymous_id in ((USER, ADDRESS, ANONYMOUS), (OTHER, "otto@example.org", None)):
        ingest_history(user_id, address, anonymous_id)
    segments = {}
    for name, body in {
        "pro": {"rule": {"trait": "plan", "op": "eq", "value": "pro"}},
        "logins": {"rule": {"event": "login", "count": {"gte": 1}, "within": "7d"}},
        "vip": {"members": [USER, OTHER]},
    }.items():
        status, created = api("POST", "/v1/segments", lambda_context, {"name": name, **body})
        assert status in (201, 202), created  # 202: a dynamic segment's backfill runs
        segments[name] = created["segment_id"]
    invalidate()
    for user_id in (USER, OTHER):
        evaluate(lambda_context, stream_record(find_profile(user_id)))
    ingest(  # USER leaves "pro" again: an enter and an exit transition
        Batch(items=[{"type": "identify", "userId": USER, "traits": {"plan": "free"}, "messageId": "down"}]),
        received_at=TEST_NOW + timedelta(minutes=1),
        retention_days=90,
    )
    evaluate(lambda_context, stream_record(find_profile(USER)))
    transitions = segment_store.recent_transitions(segments["pro"], 10)
    assert {(t["user_id"], t["kind"]) for t in transitions} >= {(USER, "enter"), (USER, "exit")}

    deliver_email_body(chunk_body([USER, OTHER]), now=TEST_NOW, ports=world.ports(), ses=ses, sleep=no_sleep)
    message = next(m for m in world.sent() if ADDRESS.lower() in {d.lower() for d in m.destinations})
    header = email.message_from_string(message.raw_data, policy=email.policy.default)["List-Unsubscribe"]
    link = re.search(r"<https://acme\.example(/u/[A-Za-z0-9_-]+)>", header).group(1)
    opted_out = call_preferences("POST", link, lambda_context, body="offered=product-updates")
    assert opted_out["statusCode"] == 200
    assert delivery_store.get_item(delivery_store.preferences_key(USER))["topics_off"] == {"product-updates"}
    assert naming(every_item(world.aws), USER, ADDRESS)  # the scan does find them before erasure
    return link


def test_after_erasure_no_item_in_any_table_names_the_user_or_their_address(history, world, lambda_context):
    before_other = naming(every_item(world.aws), OTHER)

    status, report = api("DELETE", f"/v1/users/{USER}", lambda_context)

    assert status == 200, report
    assert report["erased"]["events"] == 6 and report["erased"]["aliases"] == 1
    assert naming(every_item(world.aws), USER, ANONYMOUS, ADDRESS) == []
    assert naming(every_item(world.aws), OTHER) == before_other  # nobody else was touched
    assert api("GET", f"/v1/users/{USER}", lambda_context)[0] == 404


def test_late_stream_records_after_erasure_do_not_write_the_user_back(history, world, lambda_context):
    # Given the evaluate function still has a stream record from before the erasure in flight
    stale = stream_record(find_profile(USER))
    api("DELETE", f"/v1/users/{USER}", lambda_context)
    # When it processes that record and then the REMOVE the erasure caused
    evaluate(lambda_context, stale, stream_record(None, pk=f"U#{USER}", seq="2"))
    # Then no membership, transition or state names the user
    assert naming(every_item(world.aws), USER, ADDRESS) == []


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("List-Unsubscribe=One-Click", "application/x-www-form-urlencoded"),  # RFC 8058, from the header
        ("offered=product-updates", "application/x-www-form-urlencoded"),  # the form, topic unticked
        ("offered=product-updates&unsubscribe_all=1", "application/x-www-form-urlencoded"),
    ],
    ids=["one-click", "form-topic", "form-all"],
)
def test_a_link_replayed_after_erasure_only_puts_the_hashed_suppression_entry(
    history, world, lambda_context, body, content_type
):
    api("DELETE", f"/v1/users/{USER}", lambda_context)
    before = {(i["pk"], i["sk"]): i for i in every_item(world.aws)}

    page = call_preferences("GET", history, lambda_context)
    replayed = call_preferences("POST", history, lambda_context, body=body, content_type=content_type)

    assert page["statusCode"] == 200 and replayed["statusCode"] == 200
    after = {(i["pk"], i["sk"]): i for i in every_item(world.aws)}
    changed = {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
    assert changed == {(f"SUP#{email_hash(ADDRESS)}", "SUPPRESSION")}
    assert after[(f"SUP#{email_hash(ADDRESS)}", "SUPPRESSION")]["reason"] == "unsubscribed"
    assert naming(after.values(), USER, ADDRESS) == []


def test_a_replayed_link_keeps_a_bounce_entry_as_it_was(history, world, lambda_context):
    delivery_store.put_suppressions(
        [{"email_hash": email_hash(ADDRESS), "reason": "bounce", "created_at": "2026-11-20T00:00:00.000Z"}]
    )
    api("DELETE", f"/v1/users/{USER}", lambda_context)
    call_preferences("POST", history, lambda_context, body="List-Unsubscribe=One-Click")
    entry = delivery_store.get_item(delivery_store.suppression_key(email_hash(ADDRESS)))
    assert entry["reason"] == "bounce" and entry["created_at"] == "2026-11-20T00:00:00.000Z"


def test_a_replayed_link_that_opts_out_of_nothing_writes_nothing(history, world, lambda_context):
    api("DELETE", f"/v1/users/{USER}", lambda_context)
    before = every_item(world.aws)
    call_preferences("POST", history, lambda_context, body="offered=product-updates&topic=product-updates")
    assert every_item(world.aws) == before
