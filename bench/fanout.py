"""fanout_requests_per_1k: AWS requests to deliver one announcement to 1,000 email recipients.

End to end through the real handlers, in-process on moto: the API creates the announcement
(publish now → page 0 on the publish queue), the publish function runs each page (audience
snapshot, plan, SNS PublishBatch), moto's SNS delivers the chunks to the email queue, and the
deliver-email function gets them as SQS Lambda events (batch size 5, as in template.yaml):
profiles, preferences and suppressions, ledger claims and outcomes with the counters, SES.

Counted: every request the handlers make (botocore hooks). Not counted: the queue reads that
stand in for Lambda's SQS pollers (made here with an unhooked client); those are reported
separately, since the pollers' long polls are billed but their number depends on AWS's poller
fleet, not on this code.
"""

import json
import time
from collections import Counter
from typing import Any

import boto3

from bench.aws_counter import counting
from bench.emulated_aws import bulk_put, emulated_aws, scaled_dynamodb
from bench.results import Figure

RECIPIENTS = 1_000
SEGMENT_ID = "seg_bench_fanout"
DELIVER_BATCH = 5  # DeliverEmailFunction's SQS BatchSize
AT = "2026-11-23T09:00:00.000Z"


def _audience(resources: Any) -> None:
    """1,000 identified users with an email address, all members of one static segment."""
    from cohortcast.config import get_settings
    from cohortcast.storage import keys
    from cohortcast.storage import profiles as profile_store
    from cohortcast.storage import segments as segment_store
    from cohortcast.storage.profiles import ProfileRecord

    segment_store.save_definition(
        segment_store.SegmentDefinition(
            segment_id=SEGMENT_ID, name="fan-out bench", kind="static", created_at=AT, updated_at=AT
        )
    )
    profiles, members = [], []
    for i in range(RECIPIENTS):
        user_id = f"user-{i}"
        pk = keys.profile_pk(user_id=user_id)
        record = ProfileRecord(
            pk=pk,
            user_id=user_id,
            anonymous_id=None,
            traits={"email": f"{user_id}@example.net", "first_name": f"User{i}", "plan": "pro"},
            created_at=AT,
            updated_at=AT,
            version=1,
        )
        profiles.append(profile_store.to_item(record))
        members.append(
            {
                "pk": keys.segment_member_pk(SEGMENT_ID, keys.shard_of(pk, keys.MEMBER_SHARDS)),
                "sk": pk,
                "entered_at": AT,
                "reason": "added",
                "user_id": user_id,
            }
        )
    settings = get_settings()
    bulk_put(settings.profiles_table, profiles)
    bulk_put(settings.data_table, members)
    segment_store.set_size(SEGMENT_ID, RECIPIENTS)


def _create_event() -> dict[str, Any]:
    body = {
        "title": "Reports are {{ user.plan }} fast now",
        "body": "Hello {{ user.first_name | default('there') }},\n\nNew **reports** are here: "
        "[open them](https://acme.example/reports).",
        "audience": {"segments": [SEGMENT_ID]},
        "channels": ["email"],
        "topic": "product-updates",
    }
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/v1/announcements",
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "host": "api.example.com"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "api.example.com",
            "http": {
                "method": "POST",
                "path": "/v1/announcements",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
            },
            "requestId": "bench",
            "routeKey": "$default",
            "stage": "$default",
            "authorizer": {"lambda": {"scope": "admin", "keyId": "bench"}},
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def _take(sqs: Any, url: str, polls: Counter) -> list[dict[str, Any]]:
    """Everything waiting on a queue, as Lambda's poller would receive and delete it."""
    taken = []
    while True:
        polls["ReceiveMessage"] += 1
        batch = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return taken
        taken.extend(batch)
        polls["DeleteMessageBatch"] += 1
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )


def _sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {"ApproximateReceiveCount": "1", **m.get("Attributes", {})},
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


def measure() -> dict[str, Any]:
    """Run the fan-out once; the counts per stage and per service, and handler seconds per stage."""
    from cohortcast.storage.announcements import get_counts
    from functions.api.app import lambda_handler as api
    from functions.deliver_email.app import lambda_handler as deliver_email
    from functions.publish.app import lambda_handler as publish
    from local.lambda_context import LambdaContext

    with emulated_aws() as resources, scaled_dynamodb():
        _audience(resources)
        poller = boto3.Session().client("sqs")  # not the default session: its calls are not counted
        polls: Counter = Counter()
        stages: dict[str, Counter] = {}
        seconds: dict[str, float] = {}
        invocations: Counter = Counter()

        def invoke(stage: str, handler: Any, event: dict[str, Any], function: str) -> Any:
            context = LambdaContext(function_name=function, memory_limit_in_mb=512)
            before = Counter(counts.requests)
            start = time.perf_counter()
            result = handler(event, context)
            seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - start
            stages.setdefault(stage, Counter()).update(Counter(counts.requests) - before)
            invocations[stage] += 1
            return result

        counting_context = counting()
        counts = counting_context.__enter__()
        created = invoke("api", api, _create_event(), "ApiFunction")
        assert created["statusCode"] == 201, created["body"]
        announcement_id = json.loads(created["body"])["id"]
        publish_arn = resources.arn("PublishQueue")
        while pages := _take(poller, resources.url("PublishQueue"), polls):
            for page in pages:  # BatchSize 1: one page per invocation
                result = invoke("publish", publish, _sqs_event([page], publish_arn), "PublishFunction")
                assert result == {"batchItemFailures": []}, result
        email_arn = resources.arn("EmailQueue")
        chunks = _take(poller, resources.url("EmailQueue"), polls)
        for start in range(0, len(chunks), DELIVER_BATCH):
            event = _sqs_event(chunks[start : start + DELIVER_BATCH], email_arn)
            result = invoke("deliver_email", deliver_email, event, "DeliverEmailFunction")
            assert result == {"batchItemFailures": []}, result
        counting_context.__exit__(None, None, None)
        total, _ = get_counts(announcement_id)
    assert total.get("sent") == RECIPIENTS, total
    requests: Counter = Counter()
    for counted in stages.values():
        requests.update(counted)
    per_service: Counter = Counter()
    for key, n in requests.items():
        per_service[key.split(".")[0]] += n
    return {
        "recipients": RECIPIENTS,
        "chunks": len(chunks),
        "requests": dict(sorted(requests.items())),
        "per_service": dict(per_service),
        "per_stage": {stage: sum(c.values()) for stage, c in stages.items()},
        "invocations": dict(invocations),
        "handler_seconds": seconds,
        "sqs_poller_requests_not_counted": dict(polls),
        "counts": total,
        "write_units": counts.write_units,
        "read_units": counts.read_units,
    }


def run() -> list[Figure]:
    found = measure()
    ses = found["per_service"].get("sesv2", 0)
    other = sum(found["requests"].values()) - ses
    return [
        Figure(
            "fanout_requests_per_1k",
            other,
            "non-SES requests",
            "<= 250 (+1,000 SES sends)",
            other <= 250 and ses == RECIPIENTS,
            found,
        )
    ]
