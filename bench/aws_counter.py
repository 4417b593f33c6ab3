"""Count AWS requests and DynamoDB write units by hooking botocore's `before-call` event."""

import json
import math
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

_WRITE_OPERATIONS = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def attribute_size(value: dict[str, Any]) -> int:
    """DynamoDB's item size rules for one typed attribute value."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        digits = len(inner.lstrip("-").replace(".", "").lstrip("0")) or 1
        return math.ceil(digits / 2) + 1
    if kind == "B":
        return len(inner) * 3 // 4  # base64 on the wire
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(attribute_size({kind[0]: v}) for v in inner)
    if kind == "L":
        return 3 + sum(1 + attribute_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + attribute_size(v) for k, v in inner.items())
    raise ValueError(kind)


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def write_units(item: dict[str, Any]) -> int:
    """Standard writes bill one unit per started KB of the item."""
    return max(1, math.ceil(item_size(item) / 1024))


@dataclass
class AwsCounts:
    requests: Counter = field(default_factory=Counter)  # "service.Operation" → calls
    write_units: int = 0
    items_written: int = 0
    items_read: int = 0
    read_units: float = 0.0  # items read x 0.5 (eventually consistent) or 1 (consistent), items <= 4 KB

    def total_requests(self, service: str | None = None) -> int:
        return sum(n for key, n in self.requests.items() if service is None or key.startswith(service + "."))

    def per_service(self) -> dict[str, int]:
        services: Counter = Counter()
        for key, n in self.requests.items():
            services[key.split(".")[0]] += n
        return dict(services)


@contextmanager
def counting() -> Iterator[AwsCounts]:
    counts = AwsCounts()

    def before_call(model: Any, params: dict[str, Any], **_: Any) -> None:
        service = model.service_model.service_name
        counts.requests[f"{service}.{model.name}"] += 1
        if service == "dynamodb":
            _count_dynamodb(model.name, json.loads(params.get("body") or b"{}"), counts)

    events = boto3.DEFAULT_SESSION._session.get_component("event_emitter") if boto3.DEFAULT_SESSION else None
    if events is None:
        boto3.setup_default_session()
        events = boto3.DEFAULT_SESSION._session.get_component("event_emitter")

    def after_call(model: Any, parsed: dict[str, Any], **_: Any) -> None:
        if model.service_model.service_name == "dynamodb" and model.name in ("Query", "Scan"):
            scanned = int(parsed.get("ScannedCount", parsed.get("Count", 0)))
            counts.items_read += scanned
            counts.read_units += max(1, scanned) * 0.5  # small items; a Query costs at least 0.5

    events.register("before-call.*.*", before_call, unique_id="bench-counter")
    events.register("after-call.*.*", after_call, unique_id="bench-counter-after")
    _forget_clients()  # clients copy the session's handlers when built: rebuild them now
    try:
        yield counts
    finally:
        events.unregister("before-call.*.*", unique_id="bench-counter")
        events.unregister("after-call.*.*", unique_id="bench-counter-after")
        _forget_clients()


def _forget_clients() -> None:
    from cohortcast.storage import aws

    aws.reset()  # every client, the SES one (its own retry config) included


def _count_dynamodb(operation: str, body: dict[str, Any], counts: AwsCounts) -> None:
    if operation in ("PutItem",):
        counts.write_units += write_units(body["Item"])
        counts.items_written += 1
    elif operation == "BatchWriteItem":
        for requests in body["RequestItems"].values():
            for request in requests:
                item = request.get("PutRequest", {}).get("Item") or request.get("DeleteRequest", {}).get(
                    "Key"
                )
                counts.write_units += write_units(item)
                counts.items_written += 1
    elif operation == "TransactWriteItems":
        for entry in body["TransactItems"]:
            ((kind, op),) = entry.items()
            # Transactions bill 2 units per item per KB (ConditionCheck: 2 read units, approximated).
            counts.write_units += 2 * (write_units(op["Item"]) if kind == "Put" else 1)
            counts.items_written += kind != "ConditionCheck"
    elif operation in _WRITE_OPERATIONS:
        counts.write_units += 1  # updates/deletes of small items; refined where a figure needs it
        counts.items_written += 1
    elif operation == "BatchGetItem":
        for request in body["RequestItems"].values():
            counts.items_read += len(request["Keys"])
            counts.read_units += len(request["Keys"]) * (1.0 if request.get("ConsistentRead") else 0.5)
    elif operation == "GetItem":
        counts.items_read += 1
        counts.read_units += 1.0 if body.get("ConsistentRead") else 0.5
