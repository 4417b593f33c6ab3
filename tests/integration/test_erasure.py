"""Erasure on the local stack, through real HTTP: after `DELETE /v1/users/{id}` no item in any
table names the user or their address, and their old unsubscribe link only touches the hashed
suppression entry."""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
import uuid

import boto3
import pytest

from tests.personal_data import naming, scan_all

pytestmark = pytest.mark.integration


def every_item(stack) -> list[dict]:
    dynamodb = boto3.resource("dynamodb", endpoint_url=stack.aws_endpoint, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    return [
        item
        for name in dynamodb.meta.client.list_tables()["TableNames"]
        for item in scan_all(dynamodb.Table(name))
    ]


def items_by_key(stack) -> dict[tuple, dict]:
    """Every item of every table, keyed by (table, its key attributes): tables differ in keys."""
    dynamodb = boto3.resource("dynamodb", endpoint_url=stack.aws_endpoint, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    found = {}
    for name in dynamodb.meta.client.list_tables()["TableNames"]:
        table = dynamodb.Table(name)
        key_names = [k["AttributeName"] for k in table.key_schema]
        for item in scan_all(table):
            found[(name, *(item[k] for k in key_names))] = item
    return found


def ingest(stack, batch: list[dict]) -> None:
    response = stack.http.post("/v1/batch", json={"batch": batch}, auth=(stack.write_key, ""))
    assert response.status_code == 200, response.text


def create_segment(stack, body: dict) -> str:
    response = stack.admin.post("/v1/segments", json={"name": f"erasure {uuid.uuid4().hex[:6]}", **body})
    assert response.status_code in (201, 202), response.text
    return response.json()["segment_id"]


@pytest.fixture
def person(stack):
    """A user with anonymous history merged in, logins, three segments (one left again), one
    email received and a topic opted out of through its link; and another user beside them.
    Returns (user id, anonymous id, [first address, the address emailed], unsubscribe path, the
    other user's id)."""
    run = uuid.uuid4().hex[:8]
    user, anonymous, other = f"erin-{run}", f"anon-{run}", f"otto-{run}"
    address = f"erin.{run}@example.org"
    ingest(
        stack,
        [
            {"type": "page", "anonymousId": anonymous, "name": "pricing"},
            {
                "type": "identify",
                "userId": user,
                "anonymousId": anonymous,
                "traits": {"email": address, "plan": "pro", "first_name": "Erin"},
            },
            *[{"type": "track", "userId": user, "event": f"login-{run}"} for _ in range(3)],
            {"type": "identify", "userId": other, "traits": {"email": f"{other}@example.org", "plan": "pro"}},
        ],
    )
    stack.drain()
    create_segment(stack, {"rule": {"trait": "email", "op": "ends_with", "value": f"{run}@example.org"}})
    create_segment(stack, {"rule": {"event": f"login-{run}", "count": {"gte": 1}, "within": "7d"}})
    static = create_segment(stack, {"members": [user, other]})
    stack.drain()
    ingest(stack, [{"type": "identify", "userId": user, "traits": {"email": f"erin.{run}@example.net"}}])
    stack.drain()  # left the first segment again: an enter and an exit

    topic = f"news-{run}"
    response = stack.admin.post(
        "/v1/announcements",
        json={
            "title": f"Erasure {run}",
            "body": "Hi",
            "audience": {"segments": [static]},
            "channels": ["email"],
            "topic": topic,
        },
    )
    assert response.status_code == 201, response.text
    stack.settle()
    received = next(
        e for e in stack.outbox() if e["subject"].startswith(f"Erasure {run}") and user_to(e, run)
    )
    header = email.message_from_string(received["raw"], policy=email.policy.default)["List-Unsubscribe"]
    path = re.search(r"<https://[^/>]+(/u/[A-Za-z0-9_-]+)>", header).group(1)
    saved = stack.http.post(path, data={"offered": topic})  # the form, the topic unticked
    assert saved.status_code == 200, saved.text
    return user, anonymous, [address, received["to"][0]], path, other


def user_to(message: dict, run: str) -> bool:
    return any(f"erin.{run}@example.net" == to.lower() for to in message["to"])


def test_after_erasure_no_item_in_any_table_names_the_user_or_their_address(stack, person):
    user, anonymous, addresses, _, other = person
    assert naming(every_item(stack), user, *addresses)  # the scan finds them before erasure
    others_before = naming(every_item(stack), other)

    response = stack.admin.delete(f"/v1/users/{user}")
    stack.drain()  # the profile's REMOVE reaches the evaluate function

    assert response.status_code == 200, response.text
    assert response.json()["erased"]["aliases"] == 1
    assert naming(every_item(stack), user, anonymous, *addresses) == []
    assert len(naming(every_item(stack), other)) == len(others_before)  # nobody else lost anything
    assert stack.admin.get(f"/v1/users/{user}").status_code == 404


def test_an_unsubscribe_link_replayed_after_erasure_only_puts_the_hashed_suppression_entry(stack, person):
    user, _, addresses, path, _ = person
    stack.admin.delete(f"/v1/users/{user}")
    stack.drain()
    before = items_by_key(stack)

    page = stack.http.get(path)
    one_click = stack.http.post(
        path,
        content="List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    stack.drain()

    assert page.status_code == 200 and one_click.status_code == 200
    after = items_by_key(stack)
    changed = {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
    suppression_key = (f"SUP#{hashlib.sha256(addresses[1].lower().encode()).hexdigest()}", "SUPPRESSION")
    assert {key[1:] for key in changed} == {suppression_key}
    (suppression,) = changed
    assert after[suppression]["reason"] == "unsubscribed"
    assert naming(after.values(), user, *addresses) == []
