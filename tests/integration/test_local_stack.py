"""The local stack itself: gateway, authorizer, local routes — through real HTTP."""

from __future__ import annotations

import gzip
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.gateway import Gateway, Request, match, routes
from local.patterns import matches
from local.pollers import OneTimeSchedules, SqsPoller, StreamPoller
from local.runtime import LocalFunction
from local.template import FunctionSpec, function_arn

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


# ---------------------------------------------------------------- the emulation pieces, in-process


def _function(handler: Any, events: dict[str, Any] | None = None, logical_id: str = "Fn") -> LocalFunction:
    spec = FunctionSpec(logical_id, "fn", "app.lambda_handler", 128, 3, events or {})
    return LocalFunction(spec=spec, handler=handler)


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


def test_a_poison_message_reaches_the_dead_letter_queue_while_others_are_deleted(fake_aws) -> None:
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName="Dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    work = sqs.create_queue(QueueName="Work", Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    sqs.send_message(QueueUrl=work, MessageBody="good")
    sqs.send_message(QueueUrl=work, MessageBody="poison")

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        failed = [r["messageId"] for r in event["Records"] if r["body"] == "poison"]
        return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}

    props = {
        "Queue": "arn:aws:sqs:us-east-1:123456789012:Work",
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
    }
    poller = SqsPoller(_function(handler), props, sqs)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not sqs.receive_message(QueueUrl=dlq, VisibilityTimeout=0).get(
        "Messages"
    ):
        poller.poll_once()
    dead = sqs.receive_message(QueueUrl=dlq).get("Messages", [])
    assert [m["Body"] for m in dead] == ["poison"]
    assert poller.processed == 1


def test_stream_records_are_filtered_and_shaped_like_lambda_events(fake_aws) -> None:
    ddb = boto3.client("dynamodb")
    table = ddb.create_table(
        TableName="T",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]
    ddb.put_item(TableName="T", Item={"pk": {"S": "PROFILE#1"}, "blob": {"B": b"\x00\x01"}})
    ddb.put_item(TableName="T", Item={"pk": {"S": "OTHER#1"}})
    received: list[dict[str, Any]] = []
    pattern = {"eventName": ["INSERT"], "dynamodb": {"Keys": {"pk": {"S": [{"prefix": "PROFILE#"}]}}}}
    props = {
        "Stream": table["LatestStreamArn"],
        "BatchSize": 10,
        "FilterCriteria": {"Filters": [{"Pattern": json.dumps(pattern)}]},
    }
    poller = StreamPoller(
        _function(lambda e, c: received.extend(e["Records"])), props, boto3.client("dynamodbstreams")
    )
    assert poller.poll_once() == 2
    assert poller.poll_once() == 0
    assert len(received) == 1
    record = received[0]
    assert record["eventSourceARN"] == table["LatestStreamArn"]
    assert record["dynamodb"]["NewImage"]["blob"] == {"B": "AAE="}
    json.dumps(record)  # a real event is plain JSON


def test_a_due_one_time_schedule_invokes_its_target_once_and_is_deleted(fake_aws) -> None:
    scheduler = boto3.client("scheduler")
    due = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    scheduler.create_schedule(
        Name="publish-a1",
        ScheduleExpression=f"at({due})",
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE",
        Target={
            "Arn": function_arn("PublishFunction"),
            "RoleArn": "arn:aws:iam::123456789012:role/r",
            "Input": '{"announcementId": "a1"}',
        },
    )
    calls: list[Any] = []
    functions = {"PublishFunction": _function(lambda e, c: calls.append(e), logical_id="PublishFunction")}
    schedules = OneTimeSchedules(functions, boto3.client)
    schedules.fire_due(datetime.now(UTC))
    schedules.fire_due(datetime.now(UTC))
    assert calls == [{"announcementId": "a1"}]
    assert scheduler.list_schedules()["Schedules"] == []


def test_event_patterns_cover_the_filter_criteria_subset() -> None:
    record = {"eventName": "MODIFY", "dynamodb": {"NewImage": {"kind": {"S": "profile"}, "n": {"N": "5"}}}}
    assert matches({"eventName": ["INSERT", "MODIFY"]}, record)
    assert matches({"dynamodb": {"NewImage": {"kind": {"S": [{"prefix": "prof"}]}}}}, record)
    assert matches({"dynamodb": {"OldImage": [{"exists": False}]}}, record)
    assert not matches({"dynamodb": {"NewImage": {"kind": [{"exists": False}]}}}, record)
    assert matches({"eventName": [{"anything-but": ["REMOVE"]}]}, record)
    assert not matches({"eventName": [{"anything-but": "MODIFY"}]}, record)
    assert not matches({"missing": [{"anything-but": "x"}]}, record)


SAMPLE_TEMPLATE = {
    "Resources": {
        "HttpApi": {
            "Type": "AWS::Serverless::HttpApi",
            "Properties": {
                "Auth": {
                    "DefaultAuthorizer": "Keys",
                    "Authorizers": {
                        "Keys": {
                            "FunctionArn": {"Fn::GetAtt": ["Auth", "Arn"]},
                            "EnableSimpleResponses": True,
                        }
                    },
                }
            },
        }
    }
}


def _http_event(path: str, method: str, auth: str | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {"ApiId": {"Ref": "HttpApi"}, "Path": path, "Method": method}
    if auth:
        props["Auth"] = {"Authorizer": auth}
    return {"Type": "HttpApi", "Properties": props}


def test_routes_prefer_exact_paths_then_params_then_greedy_and_methods_over_any() -> None:
    spec = FunctionSpec(
        "Api",
        "api",
        "app.lambda_handler",
        128,
        3,
        {
            "Any": _http_event("/v1/users/{userId}", "ANY"),
            "Get": _http_event("/v1/users/{userId}", "GET"),
            "Me": _http_event("/v1/users/me", "GET"),
            "Proxy": _http_event("/{proxy+}", "ANY", auth="NONE"),
        },
    )
    table = routes(SAMPLE_TEMPLATE, [spec])
    assert match(table, "GET", "/v1/users/me")[0].route_key == "GET /v1/users/me"
    route, params = match(table, "GET", "/v1/users/u%401%2F2")
    # Decoded, as an HTTP API hands pathParameters to Lambda; "%2F" stays inside the parameter.
    assert (route.route_key, params) == ("GET /v1/users/{userId}", {"userId": "u@1/2"})
    assert match(table, "DELETE", "/v1/users/u1")[0].route_key == "ANY /v1/users/{userId}"
    proxy, params = match(table, "GET", "/a/b/c")
    assert (proxy.authorizer, params) == (None, {"proxy": "a/b/c"})


def test_the_gateway_sends_a_v2_event_through_the_authorizer() -> None:
    seen: dict[str, Any] = {}

    def authorizer(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen["authorizer"] = event
        return {"isAuthorized": event["headers"].get("x-key") == "ok", "context": {"scope": "admin"}}

    def api(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen["api"] = event
        return {"statusCode": 201, "headers": {"X-Thing": "1"}, "body": "{}", "cookies": ["a=1"]}

    spec = FunctionSpec(
        "Api", "api", "app.lambda_handler", 128, 3, {"Post": _http_event("/v1/track", "POST")}
    )
    functions = {"Api": _function(api, logical_id="Api"), "Auth": _function(authorizer, logical_id="Auth")}
    gateway = Gateway(routes(SAMPLE_TEMPLATE, [spec]), functions)
    headers = {"x-key": "ok", "cookie": "s=1; t=2", "content-type": "application/json"}
    request = Request("POST", "/v1/track", "a=1&a=2&b=", headers, b'{"x": 1}', "127.0.0.1")

    response = gateway.handle(request)

    assert (response.status, response.headers["x-thing"], response.cookies) == (201, "1", ["a=1"])
    event = seen["api"]
    assert event["version"] == "2.0" and event["routeKey"] == "POST /v1/track"
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["cookies"] == ["s=1", "t=2"]
    assert event["body"] == '{"x": 1}' and event["isBase64Encoded"] is False
    assert event["requestContext"]["authorizer"] == {"lambda": {"scope": "admin"}}
    assert event["requestContext"]["stage"] == "$default"
    assert seen["authorizer"]["type"] == "REQUEST" and "body" not in seen["authorizer"]

    denied = gateway.handle(Request("POST", "/v1/track", "", {"x-key": "no"}, b"", "127.0.0.1"))
    assert (denied.status, json.loads(denied.body)) == (403, {"message": "Forbidden"})


def test_a_handler_exception_is_an_api_gateway_500() -> None:
    def broken(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("boom")

    spec = FunctionSpec(
        "Api", "api", "app.lambda_handler", 128, 3, {"Get": _http_event("/x", "GET", auth="NONE")}
    )
    gateway = Gateway(routes(SAMPLE_TEMPLATE, [spec]), {"Api": _function(broken, logical_id="Api")})
    response = gateway.handle(Request("GET", "/x", "", {}, b"", "127.0.0.1"))
    assert (response.status, json.loads(response.body)) == (500, {"message": "Internal Server Error"})
