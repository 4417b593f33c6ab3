"""moto in-process with the template's resources and the functions' environment (like tests)."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto import mock_aws

from local import FAKE_AWS_ENV
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
    whole table on every Query before filtering it. Here a transaction snapshots only the
    items it touches, and a Query sees the items unsorted (it sorts its own candidates) and,
    on the base table, only the queried partition. Requests, answers and counts are unchanged.
    """
    import copy

    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    class _NoTableCopies:
        def __getattr__(self, name: str) -> object:
            return getattr(copy, name)

        @staticmethod
        def deepcopy(value: object, memo: dict | None = None) -> object:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    original_transact = models.DynamoDBBackend.transact_write_items
    original_query = Table.query
    original_all_items = Table.all_items

    def transact_write_items(self: models.DynamoDBBackend, transact_items: list[dict]) -> None:
        touched = []
        for entry in transact_items:
            (op,) = entry.values()
            table = self.get_table(op["TableName"])
            key = op.get("Key") or {
                name: op["Item"][name] for name in (table.hash_key_attr, table.range_key_attr) if name
            }
            touched.append((table, key, copy.deepcopy(self.get_item(op["TableName"], key))))
        try:
            original_transact(self, transact_items)
        except Exception:
            for table, key, before in reversed(touched):
                hash_key = models.DynamoType(key[table.hash_key_attr])
                range_key = models.DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
                if before is None:
                    table.delete_item(hash_key, range_key)
                elif range_key is None:
                    table.items[hash_key] = before
                else:
                    table.items[hash_key][range_key] = before
            raise

    def query(self: Table, hash_key: object, *args: object, **kwargs: object) -> object:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")  # positional in moto
        if index_name:
            candidates = _index_candidates(self, index_name, args[0], args[1], kwargs)
            self.all_items = lambda: candidates
        else:
            partition = self.items.get(hash_key) or {}
            self.all_items = lambda: list(partition.values())
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    models.copy = _NoTableCopies()
    models.DynamoDBBackend.transact_write_items = transact_write_items
    Table.query = query
    try:
        yield
    finally:
        models.copy = copy
        models.DynamoDBBackend.transact_write_items = original_transact
        Table.query = original_query
        assert Table.all_items is original_all_items


def _index_candidates(
    table: Any, index_name: str, range_comparison: Any, range_values: Any, kwargs: dict[str, Any]
) -> list[Any]:
    """Items that can answer a Query on an index, in any order: moto checks and sorts them again."""
    hash_conditions = [(name, value.type, value.value) for name, value in kwargs["hash_key_conditions"]]
    range_keys = [k["AttributeName"] for k in table.get_index(index_name).schema if k["KeyType"] == "RANGE"]
    range_name = range_keys[0] if range_comparison and len(range_keys) == 1 else None
    found = []
    for partition in table.items.values():
        for item in partition.values() if table.range_key_attr else (partition,):
            attrs = item.attrs
            for name, kind, value in hash_conditions:
                attribute = attrs.get(name)
                if attribute is None or attribute.value != value or attribute.type != kind:
                    break
            else:
                if range_name is None or (
                    (ranged := attrs.get(range_name)) is not None
                    and ranged.compare(range_comparison, range_values)
                ):
                    found.append(item)
    return found


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
