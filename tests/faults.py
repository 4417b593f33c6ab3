"""DynamoDB fault injection at the botocore level, for tests that prove what a user sees when
DynamoDB throttles.

`DynamoFaults` takes moto's place on `before-send` of the service's DynamoDB clients (the
resource's and the plain one, `cohortcast.storage.aws`): botocore calls every `before-send`
handler, so moto's own would apply a request we answer with an error. Every call goes through
botocore exactly as in production; for a seeded share of calls the request never reaches moto
and the answer is

- a throttling error (`ProvisionedThroughputExceededException` or `ThrottlingException`),
  which botocore's own retry logic sees and retries; when every attempt is throttled the error
  reaches our code;
- for `TransactWriteItems`, sometimes `TransactionCanceledException` with a `ThrottlingError`
  reason per item (what DynamoDB answers when an item of the transaction is throttled): botocore
  does not retry it, our code must;
- for `BatchWriteItem` / `BatchGetItem`, sometimes a partial success: moto applies only part of
  the request and the rest comes back as `UnprocessedItems` / `UnprocessedKeys`, in the raw
  response, so botocore parses it like a real one.

With `lost_responses`, that share of the requests that do reach moto is applied and then
answered with a 500 `InternalServerError` (the write happened, the answer was lost): botocore
retries it, so conditional writes meet their own first attempt.

Retry back-off and adaptive rate limiting would make botocore sleep for real; the fixture
records those sleeps instead (`slept`), so the tests stay fast and can tell retries happened.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
from collections import Counter
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import botocore.endpoint
import pytest
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse
from moto.core.models import botocore_stubber

THROTTLING_CODES = ("ProvisionedThroughputExceededException", "ThrottlingException")
_PARTIAL = {
    "BatchWriteItem": ("RequestItems", "UnprocessedItems"),
    "BatchGetItem": ("RequestItems", "UnprocessedKeys"),
}


class DynamoFaults:
    """Answers a seeded ~`rate` of DynamoDB requests with a fault; counts what it did."""

    def __init__(self, rate: float = 0.3, seed: int = 20261124, lost_responses: float = 0.0) -> None:
        self.rate = rate
        self.lost_responses = lost_responses
        self.active = True
        # A hot partition: requests naming one of these keys are throttled (`hot_code`), retries
        # included, for the next `hot_requests` such requests (None: until the keys are cleared).
        self.hot_keys: set[str] = set()
        self.hot_code = "ProvisionedThroughputExceededException"
        self.hot_requests: int | None = None
        self.calls: Counter[str] = Counter()  # operation → requests sent while active (retries included)
        self.injected: Counter[tuple[str, str]] = Counter()  # (operation, fault) → times
        self.slept = 0.0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    # -- the hook ------------------------------------------------------------------------------

    def __call__(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        with self._lock:
            self.calls[operation] += self.active
            passes = not self.active or self._rng.random() >= self.rate
        raw = request.body.decode() if isinstance(request.body, bytes) else request.body or ""
        if self.active and self._hot(raw):
            self._count(operation, "hot partition")
            return _error(request, self.hot_code)
        if passes:
            response = botocore_stubber(event_name=event_name, request=request)
            with self._lock:
                lost = self.active and self._rng.random() < self.lost_responses
            if lost and response is not None and response.status_code == 200:
                self._count(operation, "InternalServerError after applying")
                return _error(request, "InternalServerError", status=500)
            return response
        with self._lock:
            roll = self._rng.random()
            code = self._rng.choice(THROTTLING_CODES)
        body = json.loads(raw or "{}")
        if operation in _PARTIAL and roll < 0.5 and _entries(body):
            return self._partial(request, operation, body)
        if operation == "TransactWriteItems" and roll < 0.5:
            self._count(operation, "TransactionCanceledException")
            reasons = [{"Code": "ThrottlingError", "Message": "Throughput exceeds the current capacity"}]
            return _error(
                request,
                "TransactionCanceledException",
                CancellationReasons=reasons * len(body["TransactItems"]),
            )
        self._count(operation, code)
        return _error(request, code)

    def _hot(self, raw: str) -> bool:
        with self._lock:
            if self.hot_requests == 0 or not any(f'"{key}"' in raw for key in self.hot_keys):
                return False
            if self.hot_requests is not None:
                self.hot_requests -= 1
            return True

    def _partial(self, request: Any, operation: str, body: dict[str, Any]) -> AWSResponse | None:
        """Let moto apply part of a batch; the rest is returned as unprocessed."""
        field, unprocessed_field = _PARTIAL[operation]
        kept: dict[str, Any] = {}
        left: dict[str, Any] = {}
        with self._lock:
            for table, entries in body[field].items():
                rows = entries if operation == "BatchWriteItem" else entries["Keys"]
                cut = self._rng.randint(1, len(rows) - 1) if len(rows) > 1 else len(rows)
                if operation == "BatchWriteItem":
                    kept[table], rest = rows[:cut], rows[cut:]
                else:
                    kept[table], rest = {**entries, "Keys": rows[:cut]}, {**entries, "Keys": rows[cut:]}
                if rows[cut:]:
                    left[table] = rest
        if not left:
            return botocore_stubber(event_name=f"before-send.dynamodb.{operation}", request=request)
        request.body = json.dumps({**body, field: kept}).encode()
        request.headers["Content-Length"] = str(len(request.body))
        response = botocore_stubber(event_name=f"before-send.dynamodb.{operation}", request=request)
        if response is None or response.status_code != 200:
            return response
        answer = json.loads(response.content)
        answer[unprocessed_field] = left
        self._count(operation, unprocessed_field)
        raw = json.dumps(answer).encode()
        return AWSResponse(
            request.url, 200, {**response.headers, "Content-Length": str(len(raw))}, MockRawResponse(raw)
        )

    def _count(self, operation: str, fault: str) -> None:
        with self._lock:
            self.injected[(operation, fault)] += 1

    # -- use -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def off(self) -> Iterator[None]:
        """No faults inside (the test's own reads of the outcome)."""
        self.active = False
        try:
            yield
        finally:
            self.active = True

    @property
    def share(self) -> float:
        """Faults injected per request sent."""
        return sum(self.injected.values()) / max(1, sum(self.calls.values()))

    def attach(self, *clients: Any) -> None:
        for client in clients:
            client.meta.events.unregister("before-send", botocore_stubber)
            client.meta.events.register_first("before-send.dynamodb", self, unique_id=f"faults-{id(self)}")

    def detach(self, *clients: Any) -> None:
        for client in clients:
            client.meta.events.unregister("before-send.dynamodb", unique_id=f"faults-{id(self)}")
            client.meta.events.register("before-send", botocore_stubber)


def _entries(body: dict[str, Any]) -> int:
    requested = body.get("RequestItems") or {}
    return sum(len(v) if isinstance(v, list) else len(v.get("Keys", [])) for v in requested.values())


def _error(request: Any, code: str, status: int = 400, **extra: Any) -> AWSResponse:
    raw = json.dumps(
        {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "injected fault", **extra}
    )
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "x-amzn-RequestId": "faults",
        "Content-Length": str(len(raw)),
    }
    return AWSResponse(request.url, status, headers, MockRawResponse(raw))


@pytest.fixture
def dynamodb_faults(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[DynamoFaults]:
    """~30% of the service's DynamoDB calls fail with throttling (seeded, see DynamoFaults)."""
    from botocore.retries import bucket

    from cohortcast.storage import aws as storage_aws

    faults = DynamoFaults()

    def sleep(seconds: float) -> None:
        faults.slept += seconds

    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=sleep))  # retry back-off
    monkeypatch.setattr(
        bucket.TokenBucket, "acquire", lambda self, amount=1, block=True: True
    )  # adaptive pacing
    clients = (storage_aws.dynamodb().meta.client, storage_aws.client("dynamodb"))
    faults.attach(*clients)
    yield faults
    faults.detach(*clients)
