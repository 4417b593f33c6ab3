"""Path parameters reach handlers decoded exactly once, from the event API Gateway sends.

An HTTP API hands Lambda rawPath already URL-decoded (and cut at a decoded "?"), with the
matched route in routeKey and decoded pathParameters; routing must not depend on rawPath."""

import json
from typing import Any

import pytest
from aws_lambda_powertools.event_handler.api_gateway import Router

from cohortcast.http.app import build_resolver

router = Router()


@router.get("/v1/users/<userId>")
def _user(userId: str) -> dict[str, str]:
    return {"route": "user", "userId": userId}


@router.get("/v1/users/<userId>/events")
def _events(userId: str) -> dict[str, str]:
    return {"route": "events", "userId": userId}


@router.get("/v1/segments/<segment_id>/explain/<user_id>")
def _explain(segment_id: str, user_id: str) -> dict[str, str]:
    return {"route": "explain", "segment_id": segment_id, "userId": user_id}


app = build_resolver(router)


def _event(route_key: str, raw_path: str, parameters: dict[str, str], stage: str = "$default") -> dict:
    method = route_key.partition(" ")[0].replace("ANY", "GET")
    return {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": "",
        "headers": {},
        "pathParameters": parameters,
        "requestContext": {"http": {"method": method, "path": raw_path}, "stage": stage},
        "isBase64Encoded": False,
    }


def _call(event: dict[str, Any]) -> dict[str, Any]:
    response = app.resolve(event, None)
    assert response["statusCode"] == 200, response["body"]
    return json.loads(response["body"])


@pytest.mark.parametrize(
    ("raw_path", "user_id"),
    [
        ("/v1/users/zoë", "zoë"),
        ("/v1/users/a/b", "a/b"),  # was %2F
        ("/v1/users/a", "a?b"),  # cut at the decoded "?"
        ("/v1/users/a#b", "a#b"),
        ("/v1/users/a b", "a b"),
        ("/v1/users/%41", "%41"),  # sent as %2541: decoded once, not twice
        ("/v1/users/bell\x07", "bell\x07"),
    ],
)
def test_user_route_gets_api_gateways_decoded_parameter(raw_path, user_id):
    event = _event("GET /v1/users/{userId}", raw_path, {"userId": user_id})
    assert _call(event) == {"route": "user", "userId": user_id}


def test_an_id_ending_in_a_route_suffix_stays_on_its_route():
    event = _event("GET /v1/users/{userId}", "/v1/users/x/events", {"userId": "x/events"})
    assert _call(event) == {"route": "user", "userId": "x/events"}


def test_explain_route_gets_both_parameters():
    event = _event(
        "GET /v1/segments/{segmentId}/explain/{userId}",
        "/v1/segments/seg_1/explain/a/b",
        {"segmentId": "seg_1", "userId": "a/b"},
    )
    assert _call(event) == {"route": "explain", "segment_id": "seg_1", "userId": "a/b"}


def test_a_greedy_proxy_parameter_keeps_its_slashes_as_separators():
    event = _event(
        "ANY /v1/segments/{proxy+}", "/v1/segments/seg_1/explain/zoë", {"proxy": "seg_1/explain/zoë"}
    )
    assert _call(event) == {"route": "explain", "segment_id": "seg_1", "userId": "zoë"}


def test_a_named_stage_still_routes():
    event = _event("GET /v1/users/{userId}/events", "/prod/v1/users/a/b/events", {"userId": "a/b"}, "prod")
    assert _call(event) == {"route": "events", "userId": "a/b"}
