"""ingest_wru_per_event and ingest_requests_per_event: a Segment batch mix through the ingest handler."""

import json
import random
import time
from typing import Any

from bench.aws_counter import counting
from bench.emulated_aws import emulated_aws
from bench.results import Figure

BATCHES = 40
MESSAGES_PER_BATCH = 100
USERS_PER_BATCH = 20
USER_POOL = 200
TARGET_MESSAGE_BYTES = 1024


def _message(rng: random.Random, user: str, n: int) -> dict[str, Any]:
    roll = rng.random()
    base: dict[str, Any] = {
        "userId": user,
        "messageId": f"{user}-{n}-{rng.random()}",
        "context": {
            "library": {"name": "analytics-python", "version": "2.4.0"},
            "ip": "203.0.113.7",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
        },
    }
    if roll < 0.1:
        base |= {
            "type": "identify",
            "traits": {
                "plan": rng.choice(["free", "pro", "enterprise"]),
                "email": f"{user}@example.com",
                "country": "DE",
            },
        }
    elif roll < 0.3:
        base |= {
            "type": "page",
            "name": rng.choice(["Home", "Pricing", "Docs"]),
            "properties": {"path": "/docs"},
        }
    else:
        base |= {
            "type": "track",
            "event": rng.choice(["login", "report_viewed", "feature.export", "api_call"]),
            "properties": {"plan": "pro", "source": "web"},
        }
    padding = TARGET_MESSAGE_BYTES - len(json.dumps(base))
    if padding > 0:
        base.setdefault("properties", {})["note"] = "x" * padding
    return base


def _batches(rng: random.Random) -> list[dict[str, Any]]:
    users = [f"user-{i}" for i in range(USER_POOL)]
    batches = []
    for b in range(BATCHES):
        chosen = rng.sample(users, USERS_PER_BATCH)
        items = [
            _message(rng, chosen[i % USERS_PER_BATCH], b * MESSAGES_PER_BATCH + i)
            for i in range(MESSAGES_PER_BATCH)
        ]
        batches.append({"batch": items, "sentAt": "2026-11-23T12:00:00Z"})
    return batches


def _event(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "POST /v1/batch",
        "rawPath": "/v1/batch",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "http": {"method": "POST", "path": "/v1/batch", "sourceIp": "203.0.113.7"},
            "requestId": "bench",
            "stage": "$default",
            "authorizer": {"lambda": {"scope": "write", "keyId": "bench"}},
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def run() -> list[Figure]:
    from functions.ingest.app import lambda_handler
    from local.lambda_context import LambdaContext

    rng = random.Random(7)
    batches = _batches(rng)
    context = LambdaContext(function_name="IngestFunction", memory_limit_in_mb=1024)
    with emulated_aws():
        # Warm-up: every user of the pool gets a profile, as in steady state.
        for user in range(USER_POOL):
            lambda_handler(_event({"batch": [_message(rng, f"user-{user}", -1)]}), context)
        with counting() as counts:
            start = time.perf_counter()
            for body in batches:
                result = lambda_handler(_event(body), context)
                assert result["statusCode"] == 200, result["body"]
            seconds = time.perf_counter() - start
    events = BATCHES * MESSAGES_PER_BATCH
    return [
        Figure(
            "ingest_wru_per_event",
            counts.write_units / events,
            "WRU/event",
            "<= 1.5",
            counts.write_units / events <= 1.5,
            {"events": events, "write_units": counts.write_units, "items_written": counts.items_written},
        ),
        Figure(
            "ingest_requests_per_event",
            counts.total_requests() / events,
            "requests/event",
            "<= 1.2",
            counts.total_requests() / events <= 1.2,
            {
                "requests": dict(counts.requests),
                "batches": BATCHES,
                "items_read": counts.items_read,
                "read_units": counts.read_units,
                "handler_seconds_per_batch": seconds / BATCHES,
            },
        ),
    ]
