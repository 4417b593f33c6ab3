"""The in-app feed over real HTTP on the local stack: publish in-app, ingest users, read the
feed with the write key and the user hash, a user who joins the segment later, CORS."""

import hashlib
import hmac
import uuid

import pytest

pytestmark = pytest.mark.integration


def _hash(secret: str, user_id: str) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def _feed(stack, user_id: str, path: str = "/v1/feed", **kwargs):
    headers = {"X-Cohortcast-User-Hash": _hash(stack.identity_secret, user_id), **kwargs.pop("headers", {})}
    if "json" in kwargs:
        return stack.http.post(path, auth=(stack.write_key, ""), headers=headers, **kwargs)
    return stack.http.get(
        path, params={"userId": user_id}, auth=(stack.write_key, ""), headers=headers, **kwargs
    )


def test_an_in_app_post_reaches_members_live_and_reading_it_clears_the_badge(stack):
    run = uuid.uuid4().hex[:8]
    member, latecomer, outsider = f"feed-m-{run}", f"feed-l-{run}", f"feed-o-{run}"
    for user_id in (member, latecomer, outsider):
        response = stack.http.post(
            "/v1/identify", auth=(stack.write_key, ""), json={"userId": user_id, "traits": {"plan": "pro"}}
        )
        assert response.status_code == 200, response.text
    created = stack.admin.post("/v1/segments", json={"name": f"feed-{run}", "members": [member]})
    assert created.status_code in (201, 202), created.text
    segment_id = created.json()["segment_id"]
    stack.drain()
    post = stack.admin.post(
        "/v1/announcements",
        json={
            "title": f"Feed {run}",
            "body": "Hello **{{ user.plan }}**",
            "channels": ["in_app"],
            "audience": {"segments": [segment_id]},
            "labels": ["New"],
        },
    )
    assert post.status_code == 201, post.text
    post_id = post.json()["id"]
    stack.drain()

    feed = _feed(stack, member)
    assert feed.status_code == 200, feed.text
    (item,) = [i for i in feed.json()["items"] if i["id"] == post_id]
    assert (
        item["title"] == f"Feed {run}"
        and "<strong>pro</strong>" in item["html"]
        and item["labels"] == ["New"]
    )
    assert post_id not in [i["id"] for i in _feed(stack, outsider).json()["items"]]
    assert _feed(stack, latecomer, "/v1/feed/unread").json() == {"unread": 0}

    added = stack.admin.post(f"/v1/segments/{segment_id}/members", json={"add": [latecomer]})
    assert added.status_code in (200, 202), added.text
    stack.drain()
    assert _feed(stack, latecomer, "/v1/feed/unread").json() == {"unread": 1}

    assert _feed(stack, member, f"/v1/feed/{post_id}/read", json={"userId": member}).status_code == 200
    assert _feed(stack, member, "/v1/feed/unread").json() == {"unread": 0}
    view = stack.admin.get(f"/v1/announcements/{post_id}").json()
    assert view["status"] == "sent" and view["in_app"]["read"] == 1 and view["in_app"]["eligible"] == 2


def test_the_hash_of_another_user_is_401_and_a_preflight_gets_cors_headers(stack):
    response = stack.http.get(
        "/v1/feed",
        params={"userId": "feed-victim", "writeKey": stack.write_key},
        headers={"X-Cohortcast-User-Hash": _hash(stack.identity_secret, "feed-attacker")},
    )
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_user_hash"

    preflight = stack.http.options(
        "/v1/feed/unread",
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "x-cohortcast-user-hash" in preflight.headers["access-control-allow-headers"].lower()
