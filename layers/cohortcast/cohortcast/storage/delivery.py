"""Delivery records (the ledger), users' preferences and the suppression list (DataTable).

One partition per user (`DLV#<user>`) holds the user's delivery records, one per
(announcement, channel), and their preferences item; the suppression list is keyed by the
hash of the lowercased address. See docs/data-model.md, "Announcements and delivery".

Every ledger change is a `LedgerWrite`: an item operation with the condition that makes it
safe to repeat, and the announcement counter deltas it implies. `write_all` runs them in
`TransactWriteItems` of up to 100 items *counters included*, drops the ones whose condition
failed (a duplicate, a replay, a race already won by someone else) and reports which were
applied: a change and its counts commit together or not at all.
"""

import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from cohortcast.config import get_settings
from cohortcast.storage import aws, dynamo, keys
from cohortcast.storage.announcements import counter_item_count, counter_items

_TRANSACTION_ITEMS = 100
_TRANSACTION_ATTEMPTS = 5
_RETRYABLE = frozenset(  # ThrottlingException too: what a throttled TransactWriteItems answers
    {
        "TransactionCanceledException",
        "TransactionConflictException",
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
    }
)
_CONDITION_FAILED = "ConditionalCheckFailed"
# Frequency-cap bookkeeping lives in top-level attributes `send:<announcement id>` = ISO time, so
# concurrent deliveries each SET their own attribute (no read-modify-write of a shared list).
SEND_PREFIX = "send:"


def _table_name() -> str:
    return get_settings().data_table


def _table() -> Any:
    return aws.table(_table_name())


def _client() -> Any:
    # The resource's client speaks plain Python values (it serializes AttributeValues itself).
    return aws.dynamodb().meta.client


# -- items -----------------------------------------------------------------------------------


def record_key(user_id: str, announcement_id: str, channel: str) -> dict[str, str]:
    return {"pk": keys.delivery_pk(user_id), "sk": keys.delivery_sk(announcement_id, channel)}


def preferences_key(user_id: str) -> dict[str, str]:
    return {"pk": keys.delivery_pk(user_id), "sk": keys.PREFERENCES_SK}


def suppression_key(email_hash: str) -> dict[str, str]:
    return {"pk": keys.suppression_pk(email_hash), "sk": keys.SUPPRESSION_SK}


@dataclass(slots=True)
class Preferences:
    """A user's email preferences and what the frequency cap needs (`sends`)."""

    user_id: str
    unsubscribed_all: bool = False
    topics_off: frozenset[str] = frozenset()
    topics_seen: frozenset[str] = frozenset()
    sends: dict[str, str] = field(default_factory=dict)  # announcement id → ISO time of its first claim
    exists: bool = False


def preferences_from_item(user_id: str, item: dict[str, Any] | None) -> Preferences:
    if not item:
        return Preferences(user_id=user_id)
    return Preferences(
        user_id=user_id,
        unsubscribed_all=bool(item.get("unsubscribed_all", False)),
        topics_off=frozenset(item.get("topics_off") or ()),
        topics_seen=frozenset(item.get("topics_seen") or ()),
        sends={
            name[len(SEND_PREFIX) :]: value for name, value in item.items() if name.startswith(SEND_PREFIX)
        },
        exists=True,
    )


# -- reads -----------------------------------------------------------------------------------


def batch_get(key_list: Sequence[dict[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """{(pk, sk): item} for the keys that exist."""
    return {(item["pk"], item["sk"]): item for item in dynamo.batch_get(_table_name(), key_list)}


def get_item(key: dict[str, str]) -> dict[str, Any] | None:
    return _table().get_item(Key=key, ConsistentRead=True).get("Item")


def user_items(user_id: str) -> list[dict[str, Any]]:
    """Every delivery record and the preferences item of a user."""
    query: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq(keys.delivery_pk(user_id))}
    items: list[dict[str, Any]] = []
    while True:
        response = _table().query(**query)
        items.extend(response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return items
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def due_items(due_pk: str, until: str, limit: int) -> list[dict[str, Any]]:
    """Delivery records in doubt or deferred whose `due_at` has passed (sparse DueIndex)."""
    query: dict[str, Any] = {
        "IndexName": "DueIndex",
        "KeyConditionExpression": Key("due_pk").eq(due_pk) & Key("due_at").lte(until),
        "Limit": min(limit, 1000),
    }
    items: list[dict[str, Any]] = []
    while len(items) < limit:
        response = _table().query(**query)
        items.extend(response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            break
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    return items[:limit]


# -- conditional writes ----------------------------------------------------------------------


@dataclass(slots=True)
class LedgerWrite:
    """One or two transaction items (a ledger record and optionally the preferences item)
    that must be applied together; `tag` is whatever the caller needs back when applied.

    `counts` are the announcement counter deltas the write implies, {(announcement id,
    segment id or None): deltas}: they are committed in the same transaction as the items,
    so a crash can never apply one without the other."""

    items: list[dict[str, Any]]
    tag: Any = None
    counts: dict[tuple[str, str | None], dict[str, int]] = field(default_factory=dict)


def put(
    item: dict[str, Any],
    condition: str,
    names: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"TableName": _table_name(), "Item": item, "ConditionExpression": condition}
    return {"Put": _with_expression_args(op, names, values)}


def update(
    key: dict[str, str],
    expression: str,
    *,
    condition: str | None = None,
    names: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"TableName": _table_name(), "Key": key, "UpdateExpression": expression}
    if condition:
        op["ConditionExpression"] = condition
    return {"Update": _with_expression_args(op, names, values)}


def delete(
    key: dict[str, str],
    condition: str,
    names: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"TableName": _table_name(), "Key": key, "ConditionExpression": condition}
    return {"Delete": _with_expression_args(op, names, values)}


def _with_expression_args(
    op: dict[str, Any], names: dict[str, str] | None, values: dict[str, Any] | None
) -> dict[str, Any]:
    if names:
        op["ExpressionAttributeNames"] = names
    if values:
        op["ExpressionAttributeValues"] = values
    return op


def write_all(writes: Iterable[LedgerWrite], *, sleep: Any = None) -> list[LedgerWrite]:
    """Apply each write whose conditions hold, with its counter deltas; return those applied.

    Writes are packed into transactions of ≤100 items *including* the counter updates of the
    group (one per announcement total and per segment, deltas summed). When a transaction is
    cancelled, the writes named by its cancellation reasons as `ConditionalCheckFailed` are
    dropped and the rest retried with their counters recomputed. A conflict or throttling is
    retried with backoff; if it persists the error is raised (nothing of that group applied),
    so the caller's message is redelivered rather than a write silently lost.
    """
    applied: list[LedgerWrite] = []
    for group in _groups(list(writes)):
        applied.extend(_write_group(group, sleep or time.sleep))
    return applied


def _counter_keys(writes: Iterable[LedgerWrite]) -> set[tuple[str, str | None]]:
    return {key for write in writes for key, deltas in write.counts.items() if any(deltas.values())}


def _groups(writes: list[LedgerWrite]) -> list[list[LedgerWrite]]:
    groups: list[list[LedgerWrite]] = []
    current: list[LedgerWrite] = []
    size = 0
    count_keys: set[tuple[str, str | None]] = set()
    for write in writes:
        keys_after = count_keys | _counter_keys([write])
        if current and size + len(write.items) + counter_item_count(keys_after) > _TRANSACTION_ITEMS:
            groups.append(current)
            current, size, keys_after = [], 0, _counter_keys([write])
        current.append(write)
        size += len(write.items)
        count_keys = keys_after
    if current:
        groups.append(current)
    return groups


def _write_group(group: list[LedgerWrite], sleep: Any) -> list[LedgerWrite]:
    remaining = list(group)
    for attempt in range(_TRANSACTION_ATTEMPTS):
        if not remaining:
            return []
        try:
            _transact(remaining)
            return remaining
        except ClientError as err:
            if err.response["Error"]["Code"] not in _RETRYABLE:
                raise
            rejected = _rejected(remaining, err.response.get("CancellationReasons") or [])
            if rejected is None:  # a conflict on a hot counter item, or throttling: back off
                if attempt + 1 == _TRANSACTION_ATTEMPTS:
                    raise
                sleep(random.uniform(0, min(1.0, 0.05 * 2**attempt)))
                continue
            remaining = [w for i, w in enumerate(remaining) if i not in rejected]
    raise RuntimeError("ledger transaction kept failing")  # pragma: no cover - loop returns or raises


def _transact(writes: list[LedgerWrite]) -> None:
    items = [item for write in writes for item in write.items]
    counters = counter_items(_summed_counts(writes))
    if len(items) == 1 and "Put" in items[0] and not counters:
        # One conditional put: cheaper than a transaction (1 WCU instead of 2).
        try:
            _client().put_item(**items[0]["Put"])
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ClientError(
                    {
                        "Error": {"Code": "TransactionCanceledException", "Message": "condition"},
                        "CancellationReasons": [{"Code": _CONDITION_FAILED}],
                    },
                    "PutItem",
                ) from err
            raise
        return
    _client().transact_write_items(TransactItems=items + counters)


def _summed_counts(writes: Iterable[LedgerWrite]) -> dict[tuple[str, str | None], dict[str, int]]:
    totals: dict[tuple[str, str | None], dict[str, int]] = {}
    for write in writes:
        for key, deltas in write.counts.items():
            bucket = totals.setdefault(key, {})
            for name, delta in deltas.items():
                bucket[name] = bucket.get(name, 0) + delta
    return totals


def _rejected(writes: list[LedgerWrite], reasons: list[dict[str, Any]]) -> set[int] | None:
    """Indexes of writes with a failed condition; None when the reasons don't say (conflicts)."""
    ledger_items = sum(len(w.items) for w in writes)
    if len(reasons) < ledger_items:
        return None
    codes = [r.get("Code") or "None" for r in reasons]
    if any(code != "None" for code in codes[ledger_items:]):
        return None  # a counter item conflicted or was throttled
    rejected: set[int] = set()
    position = 0
    for index, write in enumerate(writes):
        mine = codes[position : position + len(write.items)]
        position += len(write.items)
        if any(code == _CONDITION_FAILED for code in mine):
            rejected.add(index)
        elif any(code not in ("None", _CONDITION_FAILED) for code in mine):
            return None  # a conflict or throttle: back off and retry the group
    return rejected if rejected else None


# -- plain writes ----------------------------------------------------------------------------


def put_suppressions(entries: Iterable[dict[str, Any]]) -> int:
    """Idempotent puts of suppression items: {"email_hash", "reason", "created_at"}."""
    count = 0
    with _table().batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
        for entry in entries:
            batch.put_item(Item={**suppression_key(entry["email_hash"]), "kind": "suppression", **entry})
            count += 1
    return count


def suppress_if_absent(email_hash: str, *, reason: str, created_at: str) -> None:
    """Put a suppression entry unless one exists (a bounce or complaint keeps its reason)."""
    try:
        _table().put_item(
            Item={
                **suppression_key(email_hash),
                "kind": "suppression",
                "email_hash": email_hash,
                "reason": reason,
                "created_at": created_at,
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
    except ClientError as err:
        if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise


def is_suppressed(email_hash: str) -> bool:
    return get_item(suppression_key(email_hash)) is not None


def update_preferences(
    user_id: str,
    *,
    unsubscribed_all: bool | None,
    topics_off_add: frozenset[str],
    topics_off_remove: frozenset[str],
    updated_at: str,
) -> None:
    """Update only the preference attributes (delivery owns `sends`).

    DynamoDB rejects ADD and DELETE of one attribute in a single UpdateItem ("two document
    paths overlap"), so a form that keeps one topic and drops another takes two: the opt-outs
    first, so a failure in between errs towards sending less. Adding and removing disjoint
    set elements commute, so a concurrent update or a retried form still ends where it should."""
    sets = ["#kind = :kind", "updated_at = :now"]
    values: dict[str, Any] = {":kind": "preferences", ":now": updated_at}
    if unsubscribed_all is not None:
        sets.append("unsubscribed_all = :all")
        values[":all"] = unsubscribed_all
    changes = [
        (clause, topics)
        for clause, topics in (
            ("ADD topics_off :topics", topics_off_add - topics_off_remove),
            ("DELETE topics_off :topics", topics_off_remove),
        )
        if topics
    ]
    for clause, topics in changes or [("", frozenset())]:
        _table().update_item(
            Key=preferences_key(user_id),
            UpdateExpression=f"SET {', '.join(sets)} {clause}".rstrip(),
            ExpressionAttributeNames={"#kind": "kind"},
            ExpressionAttributeValues={**values, ":topics": set(topics)} if topics else values,
        )


def delete_items(items: list[dict[str, Any]]) -> int:
    """Erase these items (a user's delivery records and preferences, from `user_items`)."""
    with _table().batch_writer() as batch:
        for item in items:
            batch.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
    return len(items)
