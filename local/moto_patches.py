"""Keep moto bounded and fast in a long-running process (the local stack, the bench).

moto is built for short tests; left running it grows without bound:

- every model object it ever created stays in a class-level list (`BaseModel.__new__`
  appends to `instances_tracked`, only a moto reset clears it), deleted SQS messages and
  consumed stream records included;
- a TransactWriteItems deep-copies each table once per action to roll back (every one of
  those copies is tracked too): the growth and the slowdown of a bulk import;
- a Query sorts the whole table before filtering it;
- a DynamoDB stream keeps every record, every GetRecords registers a new iterator, an SQS
  queue remembers every deleted receipt handle, an SNS topic every message published.

`install()` fixes these in this process. The answers moto gives do not change; records a
consumer has processed are trimmed (`trim_stream`), as the TRIM_HORIZON of a real stream moves.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any

ITERATORS_KEPT = 1_000  # live shard iterators; a consumer only uses its latest
DELETED_HANDLES_KEPT = 10_000  # receipt handles remembered so a repeated delete still succeeds
NOTIFICATIONS_KEPT = 100  # messages an SNS topic remembers (moto's own inspection list)

_stream_lock = threading.Lock()  # stream appends and trims; moto has no lock of its own


def install() -> None:
    """Apply every patch, for the rest of this process (the local stack calls it once)."""
    _untracked_models()
    fast_dynamodb()
    _locked_stream_appends()
    _bounded_iterators()
    _bounded_deleted_handles()
    _bounded_notifications()


def _untracked_models() -> None:
    from moto.core.common_models import BaseModel

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:
        return object.__new__(cls)

    BaseModel.__new__ = staticmethod(__new__)  # type: ignore[method-assign]


def fast_dynamodb() -> Callable[[], None]:
    """Transactions snapshot only the items they touch; a Query scans only its partition.

    Returns the undo. On the base table a Query sees only the queried partition, unsorted
    (moto sorts its candidates itself); on an index, only the items that match its keys.
    """
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
        streams = {}
        for entry in transact_items:
            (op,) = entry.values()
            table = self.get_table(op["TableName"])
            key = op.get("Key") or {
                name: op["Item"][name] for name in (table.hash_key_attr, table.range_key_attr) if name
            }
            touched.append((table, key, copy.deepcopy(self.get_item(op["TableName"], key))))
            if table.stream_shard is not None:
                shard = table.stream_shard
                streams[id(shard)] = (shard, shard.starting_sequence_number + len(shard.items))
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
            with _stream_lock:  # a cancelled transaction leaves no stream records
                for shard, end in streams.values():
                    del shard.items[max(0, end - shard.starting_sequence_number) :]
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

    def undo() -> None:
        models.copy = copy
        models.DynamoDBBackend.transact_write_items = original_transact
        Table.query = original_query
        assert Table.all_items is original_all_items

    return undo


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


def _locked_stream_appends() -> None:
    from moto.dynamodb.models.table import StreamShard

    original = StreamShard.add

    def add(self: StreamShard, old: Any, new: Any) -> None:
        with _stream_lock:
            original(self, old, new)

    StreamShard.add = add  # type: ignore[method-assign]


def trim_stream(stream_arn: str, through_sequence_number: int) -> int:
    """Drop a stream's records up to and including this sequence number; returns how many.

    Sequence numbers stay as they were: moto numbers a record by its position after
    `starting_sequence_number`, which moves forward by the number of records dropped.
    """
    from moto.dynamodb.models import dynamodb_backends

    account, region = stream_arn.split(":")[4], stream_arn.split(":")[3]
    table_name = stream_arn.split(":table/", 1)[1].split("/", 1)[0]
    shard = dynamodb_backends[account][region].get_table(table_name).stream_shard
    if shard is None:
        return 0
    with _stream_lock:
        count = min(len(shard.items), through_sequence_number - shard.starting_sequence_number + 1)
        if count <= 0:
            return 0
        del shard.items[:count]
        shard.starting_sequence_number += count
    return count


def _bounded_iterators() -> None:
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    original = DynamoDBStreamsBackend.get_records

    def get_records(self: DynamoDBStreamsBackend, iterator_arn: str, limit: int) -> dict[str, Any]:
        result = original(self, iterator_arn, limit)
        excess = len(self.shard_iterators) - ITERATORS_KEPT
        for arn in list(self.shard_iterators)[: max(0, excess)]:  # oldest first (insertion order)
            self.shard_iterators.pop(arn, None)
        return result

    DynamoDBStreamsBackend.get_records = get_records  # type: ignore[method-assign]


def _bounded_deleted_handles() -> None:
    from moto.sqs.models import Queue

    original = Queue.delete_message

    def delete_message(self: Queue, receipt_handle: str) -> None:
        original(self, receipt_handle)
        if len(self.deleted_messages) > DELETED_HANDLES_KEPT:
            self.deleted_messages.clear()

    Queue.delete_message = delete_message  # type: ignore[method-assign]


def _bounded_notifications() -> None:
    from moto.sns.models import Topic

    original = Topic.publish

    def publish(self: Topic, *args: Any, **kwargs: Any) -> str:
        message_id = original(self, *args, **kwargs)
        del self.sent_notifications[:-NOTIFICATIONS_KEPT]
        return message_id

    Topic.publish = publish  # type: ignore[method-assign]
