"""Ingestion through real HTTP on the local stack: the Segment SDK, bad input, the users API."""

import base64
import gzip
import json
import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from rudderstack.analytics.client import Client as RudderStackClient
from segment.analytics.client import Client

pytestmark = pytest.mark.integration


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


@pytest.fixture
def ingest(stack) -> httpx.Client:
    return httpx.Client(base_url=stack.base_url, headers=_basic(stack.write_key), timeout=30)


def _uid(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.mark.parametrize("use_gzip", [False, True])
def test_segment_python_sdk_calls_land_in_the_profile(stack, use_gzip):
    user = _uid()
    errors = []
    client = Client(
        stack.write_key, host=stack.base_url, gzip=use_gzip, sync_mode=True, max_retries=1,
        on_error=lambda error, items: errors.append(error),
    )  # fmt: skip
    client.identify(user, {"plan": "enterprise", "email": f"{user}@example.test"})
    client.track(user, "login", {"method": "sso"})
    client.track(user, "report_viewed")
    client.page(user, "Docs", "Getting started")
    client.flush()
    assert errors == []

    profile = stack.admin.get(f"/v1/users/{user}")
    assert profile.status_code == 200, profile.text
    body = profile.json()
    assert body["traits"]["plan"] == "enterprise"
    assert set(body["behaviour"]) == {"login", "report_viewed", "$page"}

    events = stack.admin.get(f"/v1/users/{user}/events", params={"limit": 2})
    assert events.status_code == 200
    page = events.json()
    assert len(page["events"]) == 2 and page["next_cursor"]
    rest = stack.admin.get(f"/v1/users/{user}/events", params={"cursor": page["next_cursor"]}).json()
    assert len(page["events"]) + len(rest["events"]) == 4


def _assert_sdk_calls_landed(stack, user: str) -> None:
    """identify (plan), track login, page Docs: as each SDK test sends them."""
    profile = stack.admin.get(f"/v1/users/{user}")
    assert profile.status_code == 200, profile.text
    body = profile.json()
    assert body["traits"]["plan"] == "enterprise"
    assert set(body["behaviour"]) == {"login", "$page"}
    assert len(stack.admin.get(f"/v1/users/{user}/events").json()["events"]) == 3


@pytest.mark.parametrize("use_gzip", [False, True])
def test_rudderstack_python_sdk_calls_land_in_the_profile(stack, use_gzip):
    user = _uid()
    errors = []
    client = RudderStackClient(
        stack.write_key, host=stack.base_url, gzip=use_gzip, sync_mode=True, max_retries=1,
        on_error=lambda error, items: errors.append(error),
    )  # fmt: skip
    client.identify(user_id=user, traits={"plan": "enterprise", "email": f"{user}@example.test"})
    client.track(user_id=user, event="login", properties={"method": "sso"})
    client.page(user_id=user, name="Docs", properties={"path": "/docs"})
    client.flush()
    assert errors == []
    _assert_sdk_calls_landed(stack, user)


NODE_SDKS = Path(__file__).parent / "node"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: no Node SDK to run")
def test_rudderstack_node_sdk_with_default_settings_lands_in_the_profile(stack):
    # Its defaults send gzip with Content-Type application/x-www-form-urlencoded.
    assert (NODE_SDKS / "node_modules" / "@rudderstack" / "rudder-sdk-node").is_dir(), (
        "Node SDKs are not installed: run `make node-sdks` (npm ci in tests/integration/node)"
    )
    user = _uid()
    sent = subprocess.run(
        ["node", "send_rudderstack.js", stack.base_url, stack.write_key, user],
        cwd=NODE_SDKS, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stdout + sent.stderr
    _assert_sdk_calls_landed(stack, user)


def test_write_key_in_body_is_accepted(stack):
    user = _uid()
    response = httpx.post(
        f"{stack.base_url}/v1/track", json={"writeKey": stack.write_key, "userId": user, "event": "signup"}
    )
    assert response.status_code == 200, response.text
    assert stack.admin.get(f"/v1/users/{user}").status_code == 200


def test_retried_message_id_is_stored_once(stack, ingest):
    user = _uid()
    message = {"userId": user, "event": "login", "messageId": f"msg-{user}"}
    assert ingest.post("/v1/track", json=message).json()["duplicates"] == 0
    assert ingest.post("/v1/track", json=message).json()["duplicates"] == 1
    assert len(stack.admin.get(f"/v1/users/{user}/events").json()["events"]) == 1


def test_batch_with_bad_items_keeps_the_good_ones(stack, ingest):
    user = _uid()
    response = ingest.post(
        "/v1/batch",
        json={
            "batch": [
                {"type": "identify", "userId": user, "traits": {"plan": "pro"}},
                {"type": "track", "userId": user},  # no event
                {"type": "track", "userId": user, "event": "login", "timestamp": "not-a-date"},
                {"type": "track", "userId": user, "event": "login"},
            ],
            "context": {"library": {"name": "test"}},
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 2
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [
        (1, "missing_event"),
        (2, "invalid_timestamp"),
    ]
    events = stack.admin.get(f"/v1/users/{user}/events").json()["events"]
    assert len(events) == 2
    assert all(e["payload"]["context"]["library"]["name"] == "test" for e in events)


def _assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"} and error["message"]
    if code:
        assert error["code"] == code
    return error


def test_invalid_json_is_a_400(ingest):
    response = ingest.post("/v1/track", content=b"{nope", headers={"content-type": "application/json"})
    _assert_error(response, 400, "invalid_json")


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", None])
def test_json_body_is_read_whatever_the_content_type(stack, ingest, content_type):
    user = _uid()
    headers = {"content-type": content_type} if content_type else {}
    body = json.dumps({"userId": user, "event": "login"}).encode()
    response = ingest.post("/v1/track", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert stack.admin.get(f"/v1/users/{user}").status_code == 200


def test_form_body_is_a_400_asking_for_json(ingest):
    response = ingest.post(
        "/v1/track", content=b"userId=u1", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    _assert_error(response, 400, "invalid_json")


def test_missing_user_and_anonymous_id_is_a_400(ingest):
    error = _assert_error(ingest.post("/v1/track", json={"event": "login"}), 400, "missing_id")
    assert "userId" in error["message"]


def test_track_without_event_is_a_400(ingest):
    _assert_error(ingest.post("/v1/track", json={"userId": "u1"}), 400, "missing_event")


def test_33_kb_message_is_a_400(ingest):
    big = {"userId": "u1", "event": "x", "properties": {"blob": "x" * (33 * 1024)}}
    _assert_error(ingest.post("/v1/track", json=big), 400, "payload_too_large")


def test_33_kb_message_in_a_batch_is_rejected_alone(ingest):
    user = _uid()
    big = {"type": "track", "userId": user, "event": "x", "properties": {"blob": "x" * (33 * 1024)}}
    body = ingest.post(
        "/v1/batch", json={"batch": [big, {"type": "track", "userId": user, "event": "ok"}]}
    ).json()
    assert body["accepted"] == 1 and body["rejected"][0]["code"] == "message_too_large"


def test_501_kb_batch_is_a_400(ingest):
    items = [
        {"type": "track", "userId": "u1", "event": "x", "properties": {"p": "x" * 1000}} for _ in range(520)
    ]
    _assert_error(ingest.post("/v1/batch", json={"batch": items}), 400, "payload_too_large")


def test_2501_item_batch_is_a_400(ingest):
    items = [{"type": "track", "userId": "u", "event": "x"} for _ in range(2501)]
    error = _assert_error(ingest.post("/v1/batch", json={"batch": items}), 400, "batch_too_large")
    assert "2500" in error["message"]


def test_traits_that_are_not_an_object_is_a_400(ingest):
    _assert_error(ingest.post("/v1/identify", json={"userId": "u1", "traits": ["a"]}), 400, "invalid_field")


def test_non_iso_timestamp_is_a_400(ingest):
    response = ingest.post("/v1/track", json={"userId": "u1", "event": "x", "timestamp": "12/01/2026"})
    _assert_error(response, 400, "invalid_timestamp")


def test_gzip_body_without_content_encoding_is_read(stack, ingest):
    user = _uid()
    body = gzip.compress(json.dumps({"userId": user, "event": "login"}).encode())
    response = ingest.post("/v1/track", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert stack.admin.get(f"/v1/users/{user}").status_code == 200


def test_gzip_body_through_http(stack, ingest):
    user = _uid()
    body = gzip.compress(json.dumps({"userId": user, "event": "login"}).encode())
    response = ingest.post(
        "/v1/track", content=body, headers={"content-encoding": "gzip", "content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert stack.admin.get(f"/v1/users/{user}").status_code == 200


def test_unknown_write_key_is_a_401(stack):
    response = httpx.post(
        f"{stack.base_url}/v1/track", json={"userId": "u1", "event": "x"}, headers=_basic("nope")
    )
    _assert_error(response, 401, "unauthorized")


def test_no_key_is_a_401(stack):
    _assert_error(httpx.post(f"{stack.base_url}/v1/track", json={"userId": "u1", "event": "x"}), 401)


def test_write_key_on_an_admin_route_is_a_403(stack):
    response = httpx.get(f"{stack.base_url}/v1/users/u1", headers=_basic(stack.write_key))
    _assert_error(response, 403, "forbidden")


def test_admin_key_on_ingest_is_a_403(stack):
    response = stack.admin.post("/v1/track", json={"userId": "u1", "event": "x"})
    _assert_error(response, 403, "forbidden")


def test_unknown_user_is_a_404(stack):
    _assert_error(stack.admin.get(f"/v1/users/{_uid()}"), 404, "user_not_found")


def test_bad_events_limit_is_a_422(stack, ingest):
    _assert_error(stack.admin.get("/v1/users/u1/events", params={"limit": 0}), 422, "validation_error")


def test_erasure_removes_the_user(stack, ingest):
    user = _uid()
    ingest.post(
        "/v1/identify", json={"userId": user, "anonymousId": _uid("anon"), "traits": {"email": "e@x.test"}}
    )
    ingest.post("/v1/track", json={"userId": user, "event": "login"})
    erased = stack.admin.delete(f"/v1/users/{user}")
    assert erased.status_code == 200, erased.text
    assert erased.json()["erased"]["events"] == 2
    _assert_error(stack.admin.get(f"/v1/users/{user}"), 404)


def test_openapi_describes_every_route(stack):
    document = stack.http.get("/openapi.json").json()
    paths = document["paths"]
    for path in ("/v1/identify", "/v1/track", "/v1/page", "/v1/screen", "/v1/group", "/v1/alias", "/v1/batch",
                 "/v1/users/{userId}", "/v1/users/{userId}/events"):  # fmt: skip
        assert path in paths, path
    assert "requestBody" in paths["/v1/batch"]["post"]
    assert stack.http.get("/docs").status_code == 200


def test_auth_is_checked_before_the_body_is_validated(stack):
    response = httpx.post(f"{stack.base_url}/v1/segments", json={"rule": {"bogus": 1}})
    _assert_error(response, 401, "unauthorized")


def test_oversized_management_body_is_a_413(stack):
    response = stack.admin.post("/v1/segments", json={"name": "x" * (1024 * 1024 + 10)})
    _assert_error(response, 413, "payload_too_large")
