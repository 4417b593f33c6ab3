"""Poison input through real HTTP: a bad item is answered on its own, the user stays usable.

Write keys are public, so each payload here is one anyone can send. After each, the user it
names is readable, listable, mergeable and erasable, the rest of its batch is stored, and
segment preview still answers.
"""

from __future__ import annotations

import uuid

import boto3
import httpx
import pytest

from cohortcast.storage import events as event_store
from cohortcast.storage import keys
from tests.integration.test_delivery import announce, emails_titled, identify, static_segment

pytestmark = pytest.mark.integration

PREVIEW_EVERYONE_SEEN = {"rule": {"last_seen": {"within_last": "3650d"}}}


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _post(stack, path: str, body: dict | bytes, key: str | None = None, **kwargs) -> httpx.Response:
    auth = (key or stack.write_key, "")
    if isinstance(body, bytes):
        headers = {"Content-Type": "application/json"}
        return stack.http.post(path, content=body, auth=auth, headers=headers, **kwargs)
    return stack.http.post(path, json=body, auth=auth, **kwargs)


def _assert_user_usable(stack, user: str, *, events: int) -> None:
    """Readable, listable, previewable, then erasable (and gone)."""
    profile = stack.admin.get(f"/v1/users/{user}")
    assert profile.status_code == 200, profile.text
    listed = stack.admin.get(f"/v1/users/{user}/events")
    assert listed.status_code == 200, listed.text
    assert len(listed.json()["events"]) == events
    preview = stack.admin.post("/v1/segments/preview", json=PREVIEW_EVERYONE_SEEN)
    assert preview.status_code == 200, preview.text
    erased = stack.admin.delete(f"/v1/users/{user}")
    assert erased.status_code == 200, erased.text
    assert stack.admin.get(f"/v1/users/{user}").status_code == 404


POISON_TIMES = {
    "year 999": {"timestamp": "0999-01-01T00:00:00Z"},
    "year 9999": {"timestamp": "9999-12-31T23:59:59Z"},
    "skew correction overflows": {"timestamp": "0001-01-01T00:00:00Z", "sentAt": "9999-12-31T23:59:59Z"},
    "before 1970": {"timestamp": "1969-07-20T20:17:00Z"},
}


@pytest.mark.parametrize("times", POISON_TIMES.values(), ids=POISON_TIMES.keys())
def test_out_of_range_timestamp_is_rejected_per_item_and_never_poisons_the_user(stack, times):
    victim, bystander, anonymous = _uid("victim"), _uid("bystander"), _uid("anon")

    # A single call with the timestamp is refused, naming it
    single = _post(stack, "/v1/track", {"userId": victim, "event": "x", **times})
    assert single.status_code == 400, single.text
    assert single.json()["error"]["code"] == "invalid_timestamp"
    assert single.json()["error"]["details"][0]["field"] == "timestamp"

    # In a batch, only that item is rejected: the victim's and others' good items are stored
    batch = _post(
        stack,
        "/v1/batch",
        {
            "batch": [
                {"type": "identify", "userId": victim, "traits": {"plan": "pro"}},
                {"type": "track", "userId": victim, "event": "x", **times},
                {"type": "track", "anonymousId": anonymous, "event": "x", **times},
                {"type": "track", "userId": bystander, "event": "login"},
            ]
        },
    )
    assert batch.status_code == 200, batch.text
    body = batch.json()
    assert body["accepted"] == 2
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [
        (1, "invalid_timestamp"),
        (2, "invalid_timestamp"),
    ]
    assert stack.admin.get(f"/v1/users/{victim}").json()["traits"] == {"plan": "pro"}

    # And the victim can still be written to, merged with an anonymous id, read and erased
    later = _post(stack, "/v1/identify", {"userId": victim, "anonymousId": anonymous, "traits": {"n": 1}})
    assert later.status_code == 200, later.text
    assert anonymous in stack.admin.get(f"/v1/users/{victim}").json()["anonymous_ids"]
    _assert_user_usable(stack, victim, events=2)
    _assert_user_usable(stack, bystander, events=1)


def _nested(depth: int) -> dict:
    value: dict = {"leaf": True}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def _raw_message(user: str, properties_json: str) -> bytes:
    return f'{{"type": "track", "userId": "{user}", "event": "x", "properties": {properties_json}}}'.encode()


UNSTORABLE_PROPERTIES = {
    "integer of 5,000 digits": ('{"n": ' + "7" * 5000 + "}", "invalid_number"),
    "integer of 39 digits": ('{"n": ' + "7" * 39 + "}", "invalid_number"),
    "NaN": ('{"n": NaN}', "invalid_number"),
    "Infinity": ('{"n": [1, Infinity]}', "invalid_number"),
    "-Infinity": ('{"n": -Infinity}', "invalid_number"),
    "float overflowing to infinity": ('{"n": 1e999}', "invalid_number"),
    "nested 300 levels": ('{"n": ' + "[" * 300 + "]" * 300 + "}", "too_deep"),
}


@pytest.mark.parametrize(
    ("properties_json", "code"), UNSTORABLE_PROPERTIES.values(), ids=UNSTORABLE_PROPERTIES.keys()
)
def test_unstorable_value_rejects_its_item_and_keeps_the_rest_of_the_batch(stack, properties_json, code):
    victim, bystander = _uid("victim"), _uid("bystander")
    good = f'{{"type": "track", "userId": "{victim}", "event": "ok"}}'
    other = f'{{"type": "identify", "userId": "{bystander}", "traits": {{"plan": "free"}}}}'
    body = f'{{"batch": [{good}, {_raw_message(victim, properties_json).decode()}, {other}]}}'.encode()

    response = _post(stack, "/v1/batch", body)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 2
    assert [(r["index"], r["code"], r["field"]) for r in answer["rejected"]] == [(1, code, "properties")]
    single = _post(stack, "/v1/track", _raw_message(victim, properties_json))
    assert single.status_code == 400 and single.json()["error"]["code"] == code
    _assert_user_usable(stack, victim, events=1)
    _assert_user_usable(stack, bystander, events=1)


def test_traits_nested_past_the_limit_are_rejected_and_the_profile_stays_readable(stack):
    user = _uid("deep")
    assert _post(stack, "/v1/identify", {"userId": user, "traits": _nested(32)}).status_code == 200
    deep = _post(stack, "/v1/identify", {"userId": user, "traits": {"deep": _nested(300)}})
    assert deep.status_code == 400, deep.text
    assert (deep.json()["error"]["code"], deep.json()["error"]["details"][0]["field"]) == (
        "too_deep",
        "traits",
    )
    assert "deep" not in stack.admin.get(f"/v1/users/{user}").json()["traits"]
    _assert_user_usable(stack, user, events=1)


def test_body_nested_10000_deep_is_a_400_and_an_unknown_key_is_refused_before_it_is_read(stack):
    deep = b'{"userId": "u", "event": "x", "properties": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"

    with_key = _post(stack, "/v1/track", deep)
    assert with_key.status_code == 400, with_key.text
    assert with_key.json()["error"]["code"] == "invalid_json"

    unknown_key = _post(stack, "/v1/track", deep, key="ccw_not_a_key")
    assert unknown_key.status_code == 401, unknown_key.text

    no_key = stack.http.post("/v1/batch", content=b'{"batch": ' + b"[" * 10_000 + b"]" * 10_000 + b"}")
    assert no_key.status_code == 400 and no_key.json()["error"]["code"] == "invalid_json"


def _table(stack, name_part: str):
    dynamodb = boto3.resource(
        "dynamodb",
        endpoint_url=stack.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    names = [name for name in dynamodb.meta.client.list_tables()["TableNames"] if name_part in name]
    assert len(names) == 1, names
    return dynamodb.Table(names[0])


def test_user_stored_with_unreadable_times_is_readable_previewable_erasable_and_still_gets_email(stack):
    # Given a profile and a raw event written before times were bounded (year 999, unpadded)
    run = uuid.uuid4().hex[:8]
    poisoned, healthy = f"old-{run}", f"ok-{run}"
    identify(stack, {user: {"email": f"{user}@example.org"} for user in (poisoned, healthy)})
    stack.drain()
    pk, bad = keys.profile_pk(user_id=poisoned), "999-01-01T00:00:00.000Z"
    _table(stack, "Profiles").update_item(
        Key={"pk": pk, "sk": keys.PROFILE_SK},
        UpdateExpression="SET first_seen = :bad, last_seen = :bad",
        ExpressionAttributeValues={":bad": bad},
        ConditionExpression="attribute_exists(pk)",
    )
    old_login = {"type": "track", "event": "login", "properties": {"method": "sso"}}
    _table(stack, "Events").put_item(
        Item=event_store.to_item(
            event_store.StoredEvent(pk, bad, f"old-{run}", "track", "login", bad, bad, 0, old_login)
        )
    )

    # Then it reads as "first seen: unknown" and new events land
    profile = stack.admin.get(f"/v1/users/{poisoned}")
    assert profile.status_code == 200, profile.text
    assert profile.json()["first_seen"] is None
    login = {"userId": poisoned, "event": "login", "properties": {"method": "sso"}}
    assert _post(stack, "/v1/track", login).status_code == 200
    assert stack.admin.get(f"/v1/users/{poisoned}").json()["last_seen"] is not None
    # A preview counting raw events skips the unreadable one and counts the new login
    rule = {"event": "login", "where": {"property": "method", "op": "eq", "value": "sso"}}
    preview = stack.admin.post(
        "/v1/segments/preview", json={"rule": {**rule, "count": {"gte": 1}, "within": "7d"}}
    )
    assert preview.status_code == 200, preview.text
    assert poisoned in preview.json()["sample"]
    # An announcement reaches both users
    title = f"Unreadable time {run}"
    announce(stack, static_segment(stack, [poisoned, healthy]), title)
    stack.settle()
    assert sorted(a for e in emails_titled(stack, title) for a in e["to"]) == sorted(
        f"{user}@example.org" for user in (poisoned, healthy)
    )
    _assert_user_usable(stack, poisoned, events=3)
