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

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from cohortcast.config import get_settings
from cohortcast.storage import aws, dynamo, keys
from cohortcast.storage.announcements import counter_item_count, counter_items

_TRANSACTION_ITEMS = 100
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


# The states whose records sit in the sparse DueIndex (a claim to settle, a deferral to resume).
DUE_STATES = ("claimed", "deferred")


@dataclass(slots=True)
class Delivery:
    """One delivery record: (announcement, user, channel) and where it is in the ledger."""

    user_id: str
    announcement_id: str
    channel: str
    state: str
    segment_id: str | None = None
    reason: str | None = None
    claim_id: str = ""
    attempts: int = 0
    due_at: str | None = None  # while claimed (settle deadline) or deferred (end of quiet hours)
    message_id: str | None = None
    events: frozenset[str] = frozenset()
    updated_at: str = ""
    chunk_id: str | None = None  # the fan-out chunk that first planned it (kept across resumes)

    @property
    def key(self) -> dict[str, str]:
        return record_key(self.user_id, self.announcement_id, self.channel)


def delivery_from_item(item: dict[str, Any]) -> Delivery:
    announcement_id, _, channel = item["sk"].rpartition("#")
    return Delivery(
        user_id=item.get("user_id") or item["pk"].partition("#")[2],
        announcement_id=item.get("announcement_id", announcement_id),
        channel=item.get("channel", channel),
        state=item["state"],
        segment_id=item.get("segment_id"),
        reason=item.get("reason"),
        claim_id=item.get("claim_id", ""),
        attempts=int(item.get("attempts", 0)),
        due_at=item.get("due_at"),
        message_id=item.get("message_id"),
        events=frozenset(item.get("events") or ()),
        updated_at=item.get("updated_at", ""),
        chunk_id=item.get("chunk_id"),
    )


def delivery_item(delivery: Delivery, expires_at: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        **delivery.key,
        "kind": "delivery",
        "user_id": delivery.user_id,
        "announcement_id": delivery.announcement_id,
        "channel": delivery.channel,
        "state": delivery.state,
        "claim_id": delivery.claim_id,
        "attempts": delivery.attempts,
        "updated_at": delivery.updated_at,
        "expires_at": expires_at,
    }
    optional = {
        "segment_id": delivery.segment_id,
        "reason": delivery.reason,
        "message_id": delivery.message_id,
        "chunk_id": delivery.chunk_id,
    }
    item.update({k: v for k, v in optional.items() if v})
    if delivery.events:
        item["events"] = set(delivery.events)
    if delivery.due_at and delivery.state in DUE_STATES:
        item["due_pk"] = keys.settle_due_pk(delivery.user_id)
        item["due_at"] = delivery.due_at
    return item


# -- reads -----------------------------------------------------------------------------------


def batch_get(key_list: Sequence[dict[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """{(pk, sk): item} for the keys that exist."""
    return {(item["pk"], item["sk"]): item for item in dynamo.batch_get(_table_name(), key_list)}


def get_records(user_ids: Iterable[str], announcement_id: str, channel: str) -> dict[str, Delivery]:
    """{user id: record} of these users' records for one announcement and channel, where they exist."""
    found = batch_get([record_key(user_id, announcement_id, channel) for user_id in user_ids])
    return {record.user_id: record for record in map(delivery_from_item, found.values())}


def get_records_by_key(record_keys: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str, str], Delivery]:
    """{(user id, announcement id, channel): record} for the keys whose record exists."""
    wanted = {_pair(record_key(*triple)): triple for triple in record_keys}
    found = batch_get([record_key(*triple) for triple in wanted.values()])
    return {wanted[pair]: delivery_from_item(item) for pair, item in found.items()}


def recipients_state(
    user_ids: Sequence[str], address_hashes: Iterable[str]
) -> tuple[dict[str, Preferences], set[str]]:
    """Each user's preferences and which of these address hashes are suppressed: one read of
    both (a BatchGetItem per 100 keys)."""
    hashes = list(dict.fromkeys(address_hashes))
    found = batch_get([preferences_key(u) for u in user_ids] + [suppression_key(h) for h in hashes])
    prefs = {u: preferences_from_item(u, found.get(_pair(preferences_key(u)))) for u in user_ids}
    return prefs, {h for h in hashes if _pair(suppression_key(h)) in found}


def get_preferences(user_id: str) -> Preferences:
    return preferences_from_item(user_id, get_item(preferences_key(user_id)))


def _pair(key: dict[str, str]) -> tuple[str, str]:
    return (key["pk"], key["sk"])


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


def due_records(due_pk: str, until: str, limit: int) -> list[Delivery]:
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
    return [delivery_from_item(item) for item in items[:limit]]


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
    condition: str | None = None,
    names: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"TableName": _table_name(), "Item": item}
    if condition:
        op["ConditionExpression"] = condition
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
    condition: str | None = None,
    names: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"TableName": _table_name(), "Key": key}
    if condition:
        op["ConditionExpression"] = condition
    return {"Delete": _with_expression_args(op, names, values)}


def _with_expression_args(
    op: dict[str, Any], names: dict[str, str] | None, values: dict[str, Any] | None
) -> dict[str, Any]:
    if names:
        op["ExpressionAttributeNames"] = names
    if values:
        op["ExpressionAttributeValues"] = values
    return op


@dataclass(slots=True)
class SendsTouch:
    """Frequency-cap bookkeeping written with a claim: this announcement's send time, stale
    entries removed, the topic remembered for the preferences page."""

    at: str
    stale: tuple[str, ...] = ()
    topic: str | None = None
    record: bool = True


def change_write(
    previous: Delivery | None,
    new: Delivery | None,
    *,
    sends: SendsTouch | None,
    expires_at: int,
    counts: dict[tuple[str, str | None], dict[str, int]],
    tag: Any,
) -> LedgerWrite:
    """A record moving from `previous` (None: must not exist) to `new` (None: delete), only if
    it is still as read (state and claim id), with the preferences' sends bookkeeping."""
    condition, names, values = _expectation(previous)
    reference = new or previous
    assert reference is not None
    if new is None:
        items = [delete(reference.key, condition, names, values)]
    else:
        items = [put(delivery_item(new, expires_at), condition, names, values)]
    if sends is not None and (sends.record or sends.topic or sends.stale):
        items.append(_sends_update(reference, sends))
    return LedgerWrite(items=items, tag=tag, counts=counts)


def _expectation(previous: Delivery | None) -> tuple[str, dict[str, str], dict[str, Any]]:
    if previous is None:
        return "attribute_not_exists(pk)", {}, {}
    return (
        "#state = :expected_state AND claim_id = :expected_claim",
        {"#state": "state"},
        {":expected_state": previous.state, ":expected_claim": previous.claim_id},
    )


def _sends_update(delivery: Delivery, touch: SendsTouch) -> dict[str, Any]:
    names: dict[str, str] = {"#kind": "kind"}
    values: dict[str, Any] = {":kind": "preferences"}
    sets = ["#kind = :kind"]
    if touch.record:
        names["#send"] = SEND_PREFIX + delivery.announcement_id
        values[":at"] = touch.at
        sets.append("#send = if_not_exists(#send, :at)")
    expression = "SET " + ", ".join(sets)
    stale = [s for s in touch.stale if s != delivery.announcement_id]
    if stale:
        for index, announcement_id in enumerate(stale):
            names[f"#stale{index}"] = SEND_PREFIX + announcement_id
        expression += " REMOVE " + ", ".join(f"#stale{i}" for i in range(len(stale)))
    if touch.topic:
        values[":topic"] = {touch.topic}
        expression += " ADD topics_seen :topic"
    return update(preferences_key(delivery.user_id), expression, names=names, values=values)


def planned_twice_write(delivery: Delivery, chunk_id: str, *, at: str, tag: Any) -> LedgerWrite:
    """Mark an existing record (planned by another chunk) with this chunk id and take its extra
    `planned` back, once per chunk: a redelivered chunk finds its mark and takes nothing."""
    operation = update(
        delivery.key,
        "SET updated_at = :now ADD planned_twice_by :chunk",
        condition="attribute_exists(pk) AND chunk_id <> :chunk_id "
        "AND NOT contains(planned_twice_by, :chunk_id)",
        values={":now": at, ":chunk": {chunk_id}, ":chunk_id": chunk_id},
    )
    counts = {(delivery.announcement_id, delivery.segment_id): {"planned": -1}}
    return LedgerWrite(items=[operation], tag=tag, counts=counts)


def engagement_write(
    record: Delivery,
    *,
    flags: Sequence[str],
    sent_message_id: str | None,
    at: str,
    counts: dict[tuple[str, str | None], dict[str, int]],
    tag: Any,
) -> LedgerWrite:
    """Add engagement `flags` not yet in the record's `events` and, with `sent_message_id`, settle
    its claim as sent; only if the record is still as read and carries none of the flags."""
    names: dict[str, str] = {"#state": "state"}
    values: dict[str, Any] = {":now": at, ":read_state": record.state, ":read_claim": record.claim_id}
    sets = ["updated_at = :now"]
    removes: list[str] = []
    clauses = ["#state = :read_state", "claim_id = :read_claim"]
    if sent_message_id is not None:
        sets += ["#state = :sent", "message_id = :message_id"]
        values[":sent"] = "sent"
        values[":message_id"] = sent_message_id
        removes += ["due_pk", "due_at"]
    for index, flag in enumerate(flags):
        values[f":f{index}"] = flag
        clauses.append(f"NOT contains(events, :f{index})")
    expression = "SET " + ", ".join(sets)
    if removes:
        expression += " REMOVE " + ", ".join(removes)
    if flags:
        values[":flags"] = set(flags)
        expression += " ADD events :flags"
    operation = update(record.key, expression, condition=" AND ".join(clauses), names=names, values=values)
    return LedgerWrite(items=[operation], tag=tag, counts=counts)


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
    while remaining:  # each round drops at least one refused write, or returns, or raises
        try:
            dynamo.retrying(partial(_transact, remaining), sleep=sleep)
            return remaining
        except ClientError as err:
            rejected = _rejected(remaining, err) if dynamo.condition_failed(err) else None
            if not rejected:
                raise
            remaining = [w for i, w in enumerate(remaining) if i not in rejected]
    return []


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
                        "CancellationReasons": [{"Code": dynamo.CONDITION_FAILED}],
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


def _rejected(writes: list[LedgerWrite], err: ClientError) -> set[int] | None:
    """Indexes of writes with a failed condition; None when the reasons don't say which."""
    codes = dynamo.cancellation_codes(err)
    if len(codes) < sum(len(w.items) for w in writes):
        return None
    rejected: set[int] = set()
    position = 0
    for index, write in enumerate(writes):
        if dynamo.CONDITION_FAILED in codes[position : position + len(write.items)]:
            rejected.add(index)
        position += len(write.items)
    return rejected or None


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
    dynamo.conditional_write(
        _table().put_item,
        Item={
            **suppression_key(email_hash),
            "kind": "suppression",
            "email_hash": email_hash,
            "reason": reason,
            "created_at": created_at,
        },
        ConditionExpression="attribute_not_exists(pk)",
    )


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


@dataclass(slots=True)
class UserDeliveries:
    """Everything the delivery store keeps about one user (erasure reads it, then deletes it)."""

    records: list[Delivery]
    item_keys: list[dict[str, str]]  # the records' and the preferences item's, for `erase`


def user_deliveries(user_id: str) -> UserDeliveries:
    items = user_items(user_id)
    return UserDeliveries(
        records=[delivery_from_item(i) for i in items if keys.is_delivery_record_sk(i["sk"])],
        # the in-app feed's state item sits in the same partition; the reaction items do not
        item_keys=[{"pk": i["pk"], "sk": i["sk"]} for i in items]
        + [
            keys.reaction_key(name.removeprefix("reaction_"), user_id)
            for i in items
            if i["sk"] == keys.FEED_STATE_SK
            for name in i
            if name.startswith("reaction_")
        ],
    )


def erase(deliveries: UserDeliveries) -> int:
    """Delete these items (a user's delivery records and preferences, from `user_deliveries`)."""
    with _table().batch_writer() as batch:
        for key in deliveries.item_keys:
            batch.delete_item(Key=key)
    return len(deliveries.item_keys)
