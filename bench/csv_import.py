"""csv_import_requests_per_member: AWS requests to import a 5,000-row CSV into a static segment.

Through the real handlers, in-process on moto: the api function answers the CSV POST (202,
ids stored in chunks, first job message queued), then the backfill function runs each
`{"job": "import"}` message from the BackfillQueue as Lambda would deliver it. Counted:
every request the handlers make, the API's included. Not counted: the queue reads standing
in for Lambda's SQS poller (as in bench.fanout).
"""

import json
from collections import Counter
from typing import Any

import boto3

from bench.aws_counter import counting
from bench.emulated_aws import emulated_aws, scaled_dynamodb
from bench.fanout import _sqs_event, _take
from bench.results import Figure

ROWS = 5_000
GOAL = 0.1


def _csv_event(segment_id: str, body: str) -> dict[str, Any]:
    path = f"/v1/segments/{segment_id}/members.csv"
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "text/csv", "host": "api.example.com"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "api.example.com",
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": "bench",
            "routeKey": "$default",
            "stage": "$default",
            "authorizer": {"lambda": {"scope": "admin", "keyId": "bench"}},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def measure() -> dict[str, Any]:
    from cohortcast.clock import utcnow
    from cohortcast.segments import service
    from cohortcast.storage import segments as segment_store
    from functions.api.app import lambda_handler as api
    from functions.backfill.app import lambda_handler as backfill
    from local.lambda_context import LambdaContext

    with emulated_aws() as resources, scaled_dynamodb():
        segment = service.create({"name": "imported", "members": []}, utcnow(), lambda message: None)
        body = "user_id,email\n" + "".join(f"user-{i},user-{i}@example.net\n" for i in range(ROWS))
        poller = boto3.Session().client("sqs")  # not the default session: its calls are not counted
        polls: Counter = Counter()
        messages = 0
        with counting() as counts:
            response = api(_csv_event(segment.segment_id, body), LambdaContext("ApiFunction", 512))
            assert response["statusCode"] == 202, response["body"]
            while taken := _take(poller, resources.url("BackfillQueue"), polls):
                for message in taken:  # BatchSize 1
                    event = _sqs_event([message], resources.arn("BackfillQueue"))
                    result = backfill(event, LambdaContext("BackfillFunction", 512))
                    assert result == {"batchItemFailures": []}, result
                    messages += 1
        definition = segment_store.get_definition(segment.segment_id)
        assert definition is not None
        members = segment_store.count_members(segment.segment_id)
    progress = definition.members_import
    assert progress["state"] == "done" and definition.size == members == ROWS, (progress, members)
    return {
        "rows": ROWS,
        "requests": dict(sorted(counts.requests.items())),
        "total_requests": counts.total_requests(),
        "job_messages": messages,
        "size": definition.size,
        "members_paged": members,
        "write_units": counts.write_units,
        "sqs_poller_requests_not_counted": dict(polls),
        "progress": json.loads(json.dumps(progress, default=str)),
    }


def run() -> list[Figure]:
    found = measure()
    per_member = found["total_requests"] / ROWS
    return [
        Figure(
            "csv_import_requests_per_member",
            per_member,
            "requests/member",
            f"<= {GOAL}",
            per_member <= GOAL,
            found,
        )
    ]
