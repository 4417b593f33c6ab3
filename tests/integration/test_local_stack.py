"""The local stack itself: gateway, authorizer, local routes — through real HTTP."""

from __future__ import annotations

import gzip

import pytest

pytestmark = pytest.mark.integration


def test_health_reports_every_function_loaded(stack) -> None:
    response = stack.http.get("/_local/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_an_unknown_route_gets_a_json_404(stack) -> None:
    response = stack.http.get("/v1/no-such-route")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert isinstance(response.json(), dict)


def test_a_management_route_without_a_key_is_401_in_our_error_shape(stack) -> None:
    response = stack.http.get("/v1/users/x")
    assert response.status_code == 401
    assert set(response.json()["error"]) >= {"code", "message"}


def test_the_admin_key_passes_the_authorizer(stack) -> None:
    response = stack.admin.get("/v1/users/x")
    assert response.status_code == 404
    assert "error" in response.json()


def test_outbox_json_is_a_list(stack) -> None:
    assert isinstance(stack.outbox(), list)


def test_outbox_page_is_html(stack) -> None:
    response = stack.http.get("/_local/outbox")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


def test_running_the_schedule_of_an_unknown_function_is_404(stack) -> None:
    response = stack.http.post("/_local/schedules/NoSuchFunction", json={"time": "2026-01-01T00:00:00Z"})
    assert response.status_code == 404


def test_drain_returns_when_nothing_is_pending(stack) -> None:
    assert stack.drain()["drained"] is True


def test_a_gzip_body_reaches_the_function_base64_encoded(stack) -> None:
    # A gzip body is not text: the gateway must pass it base64-encoded rather than fail.
    body = gzip.compress(b'{"userId": "u1", "event": "Signed Up"}')
    response = stack.http.post(
        "/v1/track",
        content=body,
        headers={"content-encoding": "gzip", "content-type": "application/json"},
        auth=(stack.write_key, ""),
    )
    assert response.status_code < 500


def test_bodies_over_the_api_gateway_limit_are_rejected(stack) -> None:
    response = stack.http.post("/v1/track", content=b"x" * (10 * 1024 * 1024 + 1))
    assert response.status_code == 413
