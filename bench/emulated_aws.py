"""moto in-process with the template's resources and the functions' environment (like tests)."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto import mock_aws

from local import FAKE_AWS_ENV
from local.moto_patches import fast_dynamodb
from local.provision import provision
from local.template import Resources, all_function_environments, load_template, union_environment

BENCH_ENV = {
    **FAKE_AWS_ENV,
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


@contextmanager
def emulated_aws() -> Iterator[Resources]:
    from cohortcast.storage import aws as storage

    os.environ.update(BENCH_ENV)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    storage.reset()
    with mock_aws():
        template = load_template()
        resources = provision(template, boto3.Session())
        os.environ.update(union_environment(all_function_environments(template, resources)))
        boto3.setup_default_session()
        yield resources
    storage.reset()


@contextmanager
def scaled_dynamodb() -> Iterator[None]:
    """moto's DynamoDB with 100k+ items: the same answers without its whole-table work per call.

    moto deep-copies every table a TransactWriteItems touches (to roll back) and sorts the
    whole table on every Query before filtering it; local.moto_patches.fast_dynamodb avoids
    both (as the local stack does). Requests, answers and counts are unchanged.
    """
    undo = fast_dynamodb()
    try:
        yield
    finally:
        undo()


def typed(value: Any) -> dict[str, Any]:
    """A Python value as a typed attribute, the shape moto's backend stores (binaries as bytes)."""
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool) or value is None:
        raise TypeError(value)  # not in these items
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, bytes):
        return {"B": value}
    if isinstance(value, set) and all(isinstance(v, str) for v in value):
        return {"SS": sorted(value)}
    if isinstance(value, list):
        return {"L": [typed(v) for v in value]}
    raise TypeError(type(value))


def typed_item(item: dict[str, Any]) -> dict[str, Any]:
    return {name: typed(value) for name, value in item.items()}


def backend_table(name: str) -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_table(name)


def bulk_put(table_name: str, items: list[dict[str, Any]]) -> None:
    """Straight into the table's dict: moto's put_item re-sizes the item once per attribute."""
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict

    table = backend_table(table_name)
    for attrs in items:
        item = Item.__new__(Item)
        item.hash_key = DynamoType({"S": attrs["pk"]})
        item.range_key = DynamoType({"S": attrs["sk"]})
        item.attrs = LimitedSizeDict({name: DynamoType(typed(value)) for name, value in attrs.items()})
        table.items[item.hash_key][item.range_key] = item
