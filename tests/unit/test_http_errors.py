"""Every refusal of the HTTP edge has one shape, `{"error": {"code", "message", "details"}}`:
the guard's (key scope, body size, answered before Powertools routes), a domain error's,
a validation error's, an unknown route's and an unexpected fault's."""

import json
from typing import Any

import pytest
from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import BaseModel

from cohortcast.errors import Conflict
from cohortcast.http.app import build_resolver

router = Router()


class Body(BaseModel):
    name: str


@router.post("/v1/things")
def _create(body: Body) -> dict[str, str]:
    return {"name": body.name}


@router.get("/v1/conflict")
def _conflict() -> dict[str, str]:
    raise Conflict("the thing is in use", {"used_by": ["a"]}, code="thing_in_use")


@router.get("/v1/fault")
def _fault() -> dict[str, str]:
    raise RuntimeError("a secret detail")


app = build_resolver(router, scope="admin", max_body_bytes=100)


def _event(method: str, path: str, *, scope: str = "admin", body: str | None = None) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "http": {"method": method, "path": path},
            "stage": "$default",
            "authorizer": {"lambda": {"scope": scope, "keyId": "key_1"}},
        },
        "body": body,
        "isBase64Encoded": False,
    }


@pytest.mark.parametrize(
    ("event", "status", "code"),
    [
        (_event("GET", "/v1/conflict", scope="none"), 401, "unauthorized"),
        (_event("GET", "/v1/conflict", scope="write"), 403, "forbidden"),
        (_event("POST", "/v1/things", body=json.dumps({"name": "x" * 200})), 413, "payload_too_large"),
        (_event("GET", "/v1/conflict"), 409, "thing_in_use"),
        (_event("POST", "/v1/things", body="{}"), 422, "validation_error"),
        (_event("GET", "/v1/nowhere"), 404, "not_found"),
        (_event("GET", "/v1/fault"), 500, "internal_error"),
    ],
)
def test_every_refusal_answers_the_one_json_error_shape(event, status, code):
    response = app.resolve(event, None)

    assert response["statusCode"] == status
    assert response["headers"]["Content-Type"] == "application/json"
    body = json.loads(response["body"])
    assert list(body) == ["error"]
    assert list(body["error"]) == ["code", "message", "details"]
    assert body["error"]["code"] == code
    assert body["error"]["message"]


def test_the_guard_names_the_body_limit_and_a_domain_error_keeps_its_details():
    too_large = json.loads(app.resolve(_event("POST", "/v1/things", body="x" * 101), None)["body"])
    conflict = json.loads(app.resolve(_event("GET", "/v1/conflict"), None)["body"])

    assert too_large["error"] == {
        "code": "payload_too_large",
        "message": "request body is 101 bytes; the limit is 100 bytes",
        "details": {"limit_bytes": 100},
    }
    assert conflict["error"]["details"] == {"used_by": ["a"]}


def test_a_fault_tells_the_caller_nothing_about_it():
    body = json.loads(app.resolve(_event("GET", "/v1/fault"), None)["body"])

    assert body == {"error": {"code": "internal_error", "message": "internal error", "details": None}}
