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

# moto's server answers on many threads and its DynamoDB has no lock of its own: two
# requests interleaved inside it can both pass a condition (breaking the ledger's
# exactly-once claims) or iterate a dict another one changes. Real DynamoDB serialises
# writes per item; here every DynamoDB and Streams request, and every trim, holds this lock.
_dynamodb_lock = threading.RLock()


def install() -> None:
    """Apply every patch, for the rest of this process (the local stack calls it once)."""
    _untracked_models()
    fast_dynamodb()
    _serialised_dynamodb()
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
            # a cancelled transaction leaves no stream records
            for shard, end in streams.values():
                del shard.items[max(0, end - shard.starting_sequence_number) :]
            raise

    # moto's server answers requests on many threads: the narrowed candidates of a Query are
    # per thread, never an attribute of the shared Table another thread's Query would see.
    query_scope = threading.local()

    def all_items(self: Table) -> object:
        if getattr(query_scope, "table", None) is self:
            return query_scope.candidates
        return original_all_items(self)

    def query(self: Table, hash_key: object, *args: object, **kwargs: object) -> object:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")  # positional in moto
        if index_name:
            candidates = _index_candidates(self, index_name, args[0], args[1], kwargs)
        else:
            candidates = list((self.items.get(hash_key) or {}).values())
        query_scope.table, query_scope.candidates = self, candidates
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            query_scope.table = query_scope.candidates = None

    models.copy = _NoTableCopies()
    models.DynamoDBBackend.transact_write_items = transact_write_items
    Table.query = query
    Table.all_items = all_items

    def undo() -> None:
        models.copy = copy
        models.DynamoDBBackend.transact_write_items = original_transact
        Table.query = original_query
        Table.all_items = original_all_items

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


def _serialised_dynamodb() -> None:
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    for handler in (DynamoHandler, DynamoDBStreamsHandler):
        original = handler.call_action

        def call_action(self: Any, _original: Callable[[Any], Any] = original) -> Any:
            with _dynamodb_lock:
                return _original(self)

        handler.call_action = call_action  # type: ignore[method-assign]


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
    with _dynamodb_lock:
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
