"""DataTable access for segments: definitions, memberships, per-user state, transitions, sizes.

The layout and the reasons for it are in docs/data-model.md ("Segments").
"""

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from cohortcast.config import get_settings
from cohortcast.storage import aws, cursors, dynamo, keys
from cohortcast.storage import profiles as profile_store

# Concurrent changes of one segment conflict on its size inside transactions: retried this often.
_CONFLICT_ATTEMPTS = 6


class StaleDefinition(Exception):
    """The definition changed since it was read."""


@dataclass(slots=True)
class SegmentDefinition:
    segment_id: str
    name: str
    kind: str  # "dynamic" | "static"
    description: str = ""
    rule: dict[str, Any] | None = None
    template: str | None = None
    version: int = 0
    status: str = "active"
    size: int = 0
    backfill: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    updated_at: str = ""
    # Progress of the latest CSV import job (static segments). Written only by the job's own
    # conditional updates, never by save_definition, so an edit cannot roll it back.
    members_import: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class MembershipState:
    profile_pk: str
    segments: set[str] = field(default_factory=set)
    profile_version: int = 0
    due_at: str | None = None


@dataclass(slots=True)
class Member:
    """One user in a segment now."""

    profile_pk: str
    user_id: str | None = None
    entered_at: str | None = None
    reason: str | None = None


@dataclass(slots=True)
class Change:
    """One enter or exit of one user in one segment."""

    segment_id: str
    profile_pk: str
    kind: str  # "enter" | "exit"
    at: str
    reason: str

    @property
    def delta(self) -> int:
        """How the segment's size moves."""
        return 1 if self.kind == "enter" else -1


def _table() -> Any:
    return aws.table(get_settings().data_table)


# -- definitions -------------------------------------------------------------------------------


def _definition_item(d: SegmentDefinition) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": keys.SEGMENTS_PK,
        "sk": d.segment_id,
        "name": d.name,
        "description": d.description,
        "kind": d.kind,
        "version": d.version,
        "status": d.status,
        "size": d.size,
        "backfill": d.backfill,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
    }
    if d.rule is not None:
        item["rule"] = json.dumps(d.rule, separators=(",", ":"))
    if d.template:
        item["template"] = d.template
    return item


def _definition(item: dict[str, Any]) -> SegmentDefinition:
    return SegmentDefinition(
        segment_id=item["sk"],
        name=item.get("name", ""),
        kind=item.get("kind", "dynamic"),
        description=item.get("description", ""),
        rule=json.loads(item["rule"]) if item.get("rule") else None,
        template=item.get("template"),
        version=int(item.get("version", 0)),
        status=item.get("status", "active"),
        size=max(0, int(item.get("size", 0))),
        backfill=cursors.plain(item.get("backfill") or {}),
        created_at=item.get("created_at", ""),
        updated_at=item.get("updated_at", ""),
        members_import=cursors.plain(item.get("members_import") or {}),
    )


def list_definitions() -> list[SegmentDefinition]:
    found: list[SegmentDefinition] = []
    query: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq(keys.SEGMENTS_PK)}
    while True:
        response = _table().query(**query)
        found.extend(_definition(item) for item in response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return found
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def get_definition(segment_id: str) -> SegmentDefinition | None:
    item = _table().get_item(Key={"pk": keys.SEGMENTS_PK, "sk": segment_id}, ConsistentRead=True).get("Item")
    return _definition(item) if item else None


def save_definition(d: SegmentDefinition) -> None:
    """Create (version 0 → 1) or replace with optimistic locking; `size` is never overwritten."""
    expected = d.version
    d.version = expected + 1
    item = _definition_item(d)
    if expected == 0:
        kwargs: dict[str, Any] = {"Item": item, "ConditionExpression": Attr("pk").not_exists()}
        try:
            _table().put_item(**kwargs)
        except ClientError as err:
            d.version = expected
            _raise_stale(err)
        return
    fields = {k: v for k, v in item.items() if k not in ("pk", "sk", "size", "created_at")}
    names = {f"#f{i}": name for i, name in enumerate(fields)}
    values = {f":v{i}": value for i, value in enumerate(fields.values())}
    values[":expected"] = expected
    names["#version"] = "version"
    sets = ", ".join(f"#f{i} = :v{i}" for i in range(len(fields)))
    removes = [name for name in ("rule", "template") if name not in fields]
    names.update({f"#r{i}": name for i, name in enumerate(removes)})
    expression = f"SET {sets}" + (
        f" REMOVE {', '.join(f'#r{i}' for i in range(len(removes)))}" if removes else ""
    )
    try:
        _table().update_item(
            Key={"pk": keys.SEGMENTS_PK, "sk": d.segment_id},
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(pk) AND #version = :expected",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
    except ClientError as err:
        d.version = expected
        _raise_stale(err)


def _raise_stale(err: ClientError) -> None:
    if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
        raise StaleDefinition() from err
    raise err


def delete_definition(segment_id: str) -> None:
    _table().delete_item(Key={"pk": keys.SEGMENTS_PK, "sk": segment_id})


def set_size(segment_id: str, size: int) -> None:
    try:
        _table().update_item(
            Key={"pk": keys.SEGMENTS_PK, "sk": segment_id},
            UpdateExpression="SET #size = :s",
            ExpressionAttributeNames={"#size": "size"},
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":s": size},
        )
    except ClientError as err:
        if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise


def start_backfill(segment_id: str, version: int, backfill: dict[str, Any]) -> None:
    _table().update_item(
        Key={"pk": keys.SEGMENTS_PK, "sk": segment_id},
        UpdateExpression="SET backfill = :b",
        ConditionExpression="#v = :v",
        ExpressionAttributeNames={"#v": "version"},
        ExpressionAttributeValues={":b": backfill, ":v": version},
    )


def advance_backfill(
    segment_id: str, job_id: str, part: str, expected_cursor: str, cursor: str, processed: int, matched: int
) -> dict[str, Any] | None:
    """Move one scan part from `expected_cursor` to `cursor`; None if it already moved (redelivery).

    Returns the definition's `backfill` map after the update.
    """
    try:
        response = _table().update_item(
            Key={"pk": keys.SEGMENTS_PK, "sk": segment_id},
            UpdateExpression="SET backfill.parts.#p.#c = :c, backfill.parts.#p.#n = :n, "
            "backfill.parts.#p.#m = :m",
            ConditionExpression="backfill.job_id = :job AND backfill.parts.#p.#c = :expected",
            ExpressionAttributeNames={"#p": part, "#c": "cursor", "#n": "processed", "#m": "matched"},
            ExpressionAttributeValues={
                ":c": cursor,
                ":n": processed,
                ":m": matched,
                ":job": job_id,
                ":expected": expected_cursor,
            },
            ReturnValues="ALL_NEW",
        )
    except ClientError as err:
        if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return None
        raise
    return cursors.plain(response["Attributes"].get("backfill") or {})


def finish_backfill(segment_id: str, job_id: str, fields: dict[str, Any]) -> None:
    names = {f"#f{i}": name for i, name in enumerate(fields)}
    values = {f":v{i}": value for i, value in enumerate(fields.values())}
    values[":job"] = job_id
    try:
        _table().update_item(
            Key={"pk": keys.SEGMENTS_PK, "sk": segment_id},
            UpdateExpression="SET " + ", ".join(f"backfill.#f{i} = :v{i}" for i in range(len(fields))),
            ConditionExpression="backfill.job_id = :job",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
    except ClientError as err:
        if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise


# -- membership changes ------------------------------------------------------------------------


def apply_change(
    change: Change, user_id: str | None, expires_at: int, *, profile_version: int | None = None
) -> bool:
    """Write one enter/exit with its transition (kept until `expires_at`), exactly once; False if
    it was already applied.

    With `profile_version`, the change commits only while the profile is still at the version
    it was decided from, else StaleProfile: a backfill or sweep that read the profile before a
    real-time change must not write its older decision over the newer one.
    """
    actions = [
        *change_actions(change, user_id, expires_at),
        size_change(change.segment_id, change.delta),
        _state_change(change),
    ]
    if profile_version is not None:
        actions.append(profile_store.version_check(change.profile_pk, profile_version))
    try:
        transact(actions)
    except ClientError as err:
        if profile_version is not None and dynamo.cancellation_codes(err)[-1:] == [dynamo.CONDITION_FAILED]:
            raise profile_store.StaleProfile(change.profile_pk) from err
        if _condition_failed(err):
            return False
        raise
    return True


def _state_change(change: Change) -> dict[str, Any]:
    """The user's state item takes the change in the same transaction: an evaluation that reads
    the state right after sees every membership committed, never one that is only an item."""
    return {
        "Update": {
            "TableName": get_settings().data_table,
            "Key": {
                "pk": {"S": keys.membership_state_pk(change.profile_pk)},
                "sk": {"S": keys.MEMBERSHIP_STATE_SK},
            },
            "UpdateExpression": ("ADD" if change.kind == "enter" else "DELETE") + " #segs :s",
            "ExpressionAttributeNames": {"#segs": "segments"},
            "ExpressionAttributeValues": {":s": {"SS": [change.segment_id]}},
        }
    }


def size_change(segment_id: str, delta: int) -> dict[str, Any]:
    """The transaction action moving a segment's size with its memberships.

    In the same transaction, the size always equals the number of membership items: no
    separate ADD to lose in a crash, no recount racing with concurrent changes. A deleted
    segment fails the condition, so its memberships are not written either. One per
    transaction: a transaction may touch the definition item only once.
    """
    return {
        "Update": {
            "TableName": get_settings().data_table,
            "Key": {"pk": {"S": keys.SEGMENTS_PK}, "sk": {"S": segment_id}},
            "UpdateExpression": "ADD #size :d",
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeNames": {"#size": "size"},
            "ExpressionAttributeValues": {":d": {"N": str(delta)}},
        }
    }


def transact(items: list[dict[str, Any]]) -> None:
    """TransactWriteItems, retried while a concurrent change of the same segment holds its size.

    Only then: a throttled evaluation fails its stream batch, which Lambda retries (the
    changes are exactly-once), rather than holding the shard here.
    """
    dynamo.transact(items, attempts=_CONFLICT_ATTEMPTS, retry_if=_conflicted)


def _conflicted(err: ClientError) -> bool:
    codes = dynamo.cancellation_codes(err)
    if err.response["Error"]["Code"] == "TransactionCanceledException" and not codes:
        return "TransactionConflict" in str(err)  # some emulators omit the reasons
    return "TransactionConflict" in codes


def change_actions(change: Change, user_id: str | None, expires_at: int) -> list[dict[str, Any]]:
    """The transaction actions of one enter/exit: the conditional membership write, the
    transition and its pointer. Bulk changes put several of these in one transaction."""
    table = get_settings().data_table
    member_key = {
        "pk": {
            "S": keys.segment_member_pk(
                change.segment_id, keys.shard_of(change.profile_pk, keys.MEMBER_SHARDS)
            )
        },
        "sk": {"S": change.profile_pk},
    }
    if change.kind == "enter":
        item = {**member_key, "entered_at": {"S": change.at}, "reason": {"S": change.reason}}
        if user_id is not None:
            item["user_id"] = {"S": user_id}
        member_op = {
            "Put": {"TableName": table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}
        }
    else:
        member_op = {
            "Delete": {"TableName": table, "Key": member_key, "ConditionExpression": "attribute_exists(pk)"}
        }
    transition = {
        "pk": {"S": keys.segment_transitions_pk(change.segment_id)},
        "sk": {"S": keys.segment_transition_sk(change.at, change.kind, change.profile_pk)},
        "kind": {"S": change.kind},
        "reason": {"S": change.reason},
        "expires_at": {"N": str(expires_at)},
    }
    if user_id is not None:
        transition["user_id"] = {"S": user_id}
    pointer = {  # written with the transition, so erasure can never miss one (delete_history)
        "pk": {"S": keys.membership_state_pk(change.profile_pk)},
        "sk": {"S": keys.transition_pointer_sk(change.segment_id, transition["sk"]["S"])},
        "transition_pk": transition["pk"],
        "transition_sk": transition["sk"],
        "expires_at": transition["expires_at"],
    }
    return [
        member_op,
        {"Put": {"TableName": table, "Item": transition}},
        {"Put": {"TableName": table, "Item": pointer}},
    ]


# -- static members in bulk (docs/segments.md "Static members") ---------------------------------

# Each member change takes 4 transaction actions (membership, transition, pointer, state);
# with the definition's update that is 97 of DynamoDB's 100 per transaction.
CHANGES_PER_TRANSACTION = 24


class BulkCancelled(Exception):
    """A bulk transaction's condition failed: `progress_moved` when the definition's (segment
    deleted, or another worker advanced the import), else a membership's."""

    def __init__(self, progress_moved: bool) -> None:
        super().__init__("progress moved" if progress_moved else "membership changed meanwhile")
        self.progress_moved = progress_moved


@dataclass(slots=True)
class ImportStep:
    """Move an import job's cursor from (chunk, offset) to (next_chunk, next_offset)."""

    job_id: str
    chunk: int
    offset: int
    next_chunk: int
    next_offset: int
    at: str


def existing_members(segment_id: str, profile_pks: Iterable[str]) -> set[str]:
    """Which of these profiles are members of the segment now (BatchGetItem, 100 keys a call)."""
    key_list = [_member_key(segment_id, pk) for pk in profile_pks]
    items = dynamo.batch_get(get_settings().data_table, key_list, projection="sk", consistent=True)
    return {item["sk"] for item in items}


def commit_static_changes(
    segment_id: str,
    changes: list[Change],
    expires_at: int,
    *,
    unchanged: int = 0,
    step: ImportStep | None = None,
) -> None:
    """Up to CHANGES_PER_TRANSACTION enters/exits of one static segment in one transaction,
    with the size (and an import's progress) on the definition: all of it or none. (Like
    size_change, with the import's cursor in the same update of the definition.)

    Raises BulkCancelled when a condition fails; nothing was written then.
    """
    if len(changes) > CHANGES_PER_TRANSACTION:
        raise ValueError(f"at most {CHANGES_PER_TRANSACTION} changes per transaction")
    table = get_settings().data_table
    actions: list[dict[str, Any]] = []
    for change in changes:
        actions += change_actions(change, keys.profile_ids(change.profile_pk)[0], expires_at)
        verb = "ADD" if change.kind == "enter" else "DELETE"
        actions.append(
            {
                "Update": {
                    "TableName": table,
                    "Key": {
                        "pk": {"S": keys.membership_state_pk(change.profile_pk)},
                        "sk": {"S": keys.MEMBERSHIP_STATE_SK},
                    },
                    "UpdateExpression": f"SET updated_at = :u {verb} #segs :s",
                    "ExpressionAttributeNames": {"#segs": "segments"},
                    "ExpressionAttributeValues": {":u": {"S": change.at}, ":s": {"SS": [segment_id]}},
                }
            }
        )
    delta = sum(1 if c.kind == "enter" else -1 for c in changes)
    names = {"#size": "size"}
    values: dict[str, Any] = {":delta": {"N": str(delta)}}
    expression, condition = "ADD #size :delta", "attribute_exists(pk)"
    if step is not None:
        names.update(
            {"#imp": "members_import", "#job": "job_id", "#c": "chunk", "#o": "offset", "#n": "processed"}
            | {"#a": "added", "#un": "unchanged", "#at": "updated_at"}
        )
        values.update(
            {
                ":job": {"S": step.job_id},
                ":c": {"N": str(step.chunk)},
                ":o": {"N": str(step.offset)},
                ":nc": {"N": str(step.next_chunk)},
                ":no": {"N": str(step.next_offset)},
                ":n": {"N": str(len(changes) + unchanged)},
                ":a": {"N": str(len(changes))},
                ":un": {"N": str(unchanged)},
                ":at": {"S": step.at},
            }
        )
        expression += (
            " SET #imp.#c = :nc, #imp.#o = :no, #imp.#n = #imp.#n + :n, #imp.#a = #imp.#a + :a,"
            " #imp.#un = #imp.#un + :un, #imp.#at = :at"
        )
        condition += " AND #imp.#job = :job AND #imp.#c = :c AND #imp.#o = :o"
    actions.append(
        {
            "Update": {
                "TableName": table,
                "Key": {"pk": {"S": keys.SEGMENTS_PK}, "sk": {"S": segment_id}},
                "UpdateExpression": expression,
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }
    )
    try:
        transact(actions)
    except ClientError as err:
        if not _condition_failed(err):
            raise
        reasons = err.response.get("CancellationReasons") or []
        # Without reasons (some emulators), assume the definition's: the caller re-reads it.
        raise BulkCancelled(
            progress_moved=not reasons or reasons[-1].get("Code") == "ConditionalCheckFailed"
        ) from err


class ImportRunning(Exception):
    """Another import of this segment is running."""


def start_import(segment_id: str, progress: dict[str, Any], stalled_before: str) -> None:
    """Record a new import job on a static segment, unless one is running (and not stalled)."""
    try:
        _table().update_item(
            Key={"pk": keys.SEGMENTS_PK, "sk": segment_id},
            UpdateExpression="SET members_import = :p",
            ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(members_import) "
            "OR members_import.#state <> :running OR members_import.updated_at < :stalled)",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":p": progress, ":running": "running", ":stalled": stalled_before},
        )
    except ClientError as err:
        if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise ImportRunning() from err
        raise


def finish_import(segment_id: str, job_id: str, finished_at: str) -> None:
    try:
        _table().update_item(
            Key={"pk": keys.SEGMENTS_PK, "sk": segment_id},
            UpdateExpression="SET members_import.#state = :done, members_import.finished_at = :at, "
            "members_import.updated_at = :at",
            ConditionExpression="members_import.job_id = :job",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":done": "done", ":at": finished_at, ":job": job_id},
        )
    except ClientError as err:
        if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise


def put_import_chunks(segment_id: str, job_id: str, chunks: list[list[str]], expires_at: int) -> None:
    """The job's user ids, durable before the API answers (BatchWriteItem, 25 chunks a call)."""
    with _table().batch_writer() as batch:
        for number, ids in enumerate(chunks):
            batch.put_item(
                Item={
                    "pk": keys.segment_import_pk(segment_id, job_id),
                    "sk": f"{number:06d}",
                    "ids": ids,
                    "expires_at": expires_at,
                }
            )


def import_chunk(segment_id: str, job_id: str, number: int) -> list[str]:
    item = (
        _table()
        .get_item(
            Key={"pk": keys.segment_import_pk(segment_id, job_id), "sk": f"{number:06d}"}, ConsistentRead=True
        )
        .get("Item")
    )
    if item is None:
        raise LookupError(f"chunk {number} of import {job_id} is missing")
    return list(item["ids"])


def delete_import_chunks(segment_id: str, job_id: str, count: int) -> None:
    with _table().batch_writer() as batch:
        for number in range(count):
            batch.delete_item(Key={"pk": keys.segment_import_pk(segment_id, job_id), "sk": f"{number:06d}"})


def _condition_failed(err: ClientError) -> bool:
    return err.response["Error"]["Code"] == "TransactionCanceledException" and dynamo.condition_failed(err)


# -- per-user state ----------------------------------------------------------------------------


def state_from_item(item: dict[str, Any]) -> MembershipState:
    return MembershipState(
        profile_pk=keys.profile_pk_of_membership_state(item["pk"]),
        segments=set(item.get("segments") or ()),
        profile_version=int(item.get("profile_version", 0)),
        due_at=item.get("due_at"),
    )


def get_states(profile_pks: Iterable[str]) -> dict[str, MembershipState]:
    key_list = [
        {"pk": keys.membership_state_pk(pk), "sk": keys.MEMBERSHIP_STATE_SK}
        for pk in dict.fromkeys(profile_pks)
    ]
    states = (state_from_item(item) for item in dynamo.batch_get(get_settings().data_table, key_list))
    return {state.profile_pk: state for state in states}


def update_state(
    profile_pk: str,
    *,
    entered: Iterable[str] = (),
    exited: Iterable[str] = (),
    due_at: str | bool | None = False,
    profile_version: int | None = None,
    updated_at: str,
) -> None:
    """ADD/DELETE segment ids (idempotent); `due_at=None` leaves the DueIndex, False leaves it as is."""
    entered, exited = set(entered), set(exited)
    sets, values = ["updated_at = :u"], {":u": updated_at}
    names: dict[str, str] = {}
    removes: list[str] = []
    if due_at is None:
        removes += ["due_pk", "due_at"]
    elif due_at is not False:
        sets += ["due_pk = :dp", "due_at = :da"]
        values[":dp"] = keys.sweep_due_pk(keys.shard_of(profile_pk, keys.SWEEP_SHARDS))
        values[":da"] = due_at
    if profile_version is not None:
        sets.append("profile_version = :pv")
        values[":pv"] = profile_version
    expression = "SET " + ", ".join(sets)
    if entered:
        expression += " ADD #segs :in"
        values[":in"] = entered
        names["#segs"] = "segments"
    if removes:
        expression += " REMOVE " + ", ".join(removes)
    key = {"pk": keys.membership_state_pk(profile_pk), "sk": keys.MEMBERSHIP_STATE_SK}
    _table().update_item(
        Key=key,
        UpdateExpression=expression,
        ExpressionAttributeValues=values,
        **({"ExpressionAttributeNames": names} if names else {}),
    )
    if exited:  # DynamoDB refuses ADD and DELETE of one attribute in one expression
        _table().update_item(
            Key=key,
            UpdateExpression="DELETE #segs :out",
            ExpressionAttributeNames={"#segs": "segments"},
            ExpressionAttributeValues={":out": exited},
        )


def delete_state(profile_pk: str) -> None:
    _table().delete_item(Key={"pk": keys.membership_state_pk(profile_pk), "sk": keys.MEMBERSHIP_STATE_SK})


def delete_history(profile_pk: str) -> int:
    """Erase every transition naming the profile (found through its pointers) and the pointers."""
    query: dict[str, Any] = {
        "KeyConditionExpression": Key("pk").eq(keys.membership_state_pk(profile_pk))
        & Key("sk").begins_with(keys.TRANSITION_POINTER_PREFIX),
        "ConsistentRead": True,
    }
    erased = 0
    with _table().batch_writer() as batch:
        while True:
            response = _table().query(**query)
            for pointer in response.get("Items", []):
                batch.delete_item(Key={"pk": pointer["transition_pk"], "sk": pointer["transition_sk"]})
                batch.delete_item(Key={"pk": pointer["pk"], "sk": pointer["sk"]})
                erased += 1
            if "LastEvaluatedKey" not in response:
                return erased
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def due_page(
    shard: int, due_by: str, limit: int, start_key: dict | None
) -> tuple[list[MembershipState], dict | None]:
    """State items of one sweep shard that are due by `due_by` (DueIndex)."""
    query: dict[str, Any] = {
        "IndexName": "DueIndex",
        "KeyConditionExpression": Key("due_pk").eq(keys.sweep_due_pk(shard)) & Key("due_at").lte(due_by),
        "Limit": limit,
    }
    if start_key:
        query["ExclusiveStartKey"] = start_key
    response = _table().query(**query)
    return [state_from_item(item) for item in response.get("Items", [])], response.get("LastEvaluatedKey")


# -- member lists, history --------------------------------------------------------------------


def _member_key(segment_id: str, profile_pk: str) -> dict[str, str]:
    return {
        "pk": keys.segment_member_pk(segment_id, keys.shard_of(profile_pk, keys.MEMBER_SHARDS)),
        "sk": profile_pk,
    }


def member_page(segment_id: str, limit: int, cursor: str | None) -> tuple[list[Member], str | None]:
    """Members shard by shard; the cursor holds the shard and the last key read in it."""
    position = cursors.decode_object(cursor) if cursor else {"s": 0}
    shard, last = int(position.get("s", 0)), position.get("k")
    members: list[Member] = []
    while shard < keys.MEMBER_SHARDS and len(members) < limit:
        pk = keys.segment_member_pk(segment_id, shard)
        query: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq(pk), "Limit": limit - len(members)}
        if last:
            query["ExclusiveStartKey"] = {"pk": pk, "sk": last}
        response = _table().query(**query)
        members.extend(
            Member(item["sk"], item.get("user_id"), item.get("entered_at"), item.get("reason"))
            for item in response.get("Items", [])
        )
        last_key = response.get("LastEvaluatedKey")
        if last_key:
            last = last_key["sk"]
        else:
            shard, last = shard + 1, None
    if shard >= keys.MEMBER_SHARDS:
        return members, None
    return members, cursors.encode({"s": shard, "k": last} if last else {"s": shard})


def iter_members(segment_id: str) -> Iterator[Member]:
    cursor: str | None = None
    while True:
        page, cursor = member_page(segment_id, 500, cursor)
        yield from page
        if cursor is None:
            return


def count_members(segment_id: str) -> int:
    total = 0
    for shard in range(keys.MEMBER_SHARDS):
        query: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(keys.segment_member_pk(segment_id, shard)),
            "Select": "COUNT",
        }
        while True:
            response = _table().query(**query)
            total += int(response.get("Count", 0))
            if "LastEvaluatedKey" not in response:
                break
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    return total


def is_member(segment_id: str, profile_pk: str) -> bool:
    return _table().get_item(Key=_member_key(segment_id, profile_pk)).get("Item") is not None


def recent_transitions(segment_id: str, limit: int) -> list[dict[str, Any]]:
    response = _table().query(
        KeyConditionExpression=Key("pk").eq(keys.segment_transitions_pk(segment_id)),
        ScanIndexForward=False,
        Limit=limit,
    )
    transitions = []
    for item in response.get("Items", []):
        at, kind, profile_pk = keys.parse_segment_transition_sk(item["sk"])
        transitions.append(
            {
                "at": at,
                "profile": profile_pk,
                "user_id": item.get("user_id"),
                "kind": kind,
                "reason": item.get("reason"),
            }
        )
    return transitions


def put_size_snapshot(segment_id: str, at: str, size: int, expires_at: int) -> None:
    _table().put_item(
        Item={
            "pk": keys.segment_size_pk(segment_id),
            "sk": at,
            "size": size,
            "expires_at": expires_at,
        }
    )


def size_history(segment_id: str, limit: int) -> list[dict[str, Any]]:
    response = _table().query(
        KeyConditionExpression=Key("pk").eq(keys.segment_size_pk(segment_id)),
        ScanIndexForward=False,
        Limit=limit,
    )
    return [{"at": item["sk"], "size": int(item["size"])} for item in reversed(response.get("Items", []))]


def delete_segment_data(segment_id: str) -> int:
    """Remove a deleted segment's membership and size items (transitions expire by TTL)."""
    removed = 0
    with _table().batch_writer() as batch:
        for member in iter_members(segment_id):
            batch.delete_item(Key=_member_key(segment_id, member.profile_pk))
            removed += 1
        for snapshot in size_history(segment_id, 1000):
            batch.delete_item(Key={"pk": keys.segment_size_pk(segment_id), "sk": snapshot["at"]})
    return removed


def remove_member(segment_id: str, profile_pk: str) -> bool:
    """Delete a membership without a transition (erasure, purge); False if there was none."""
    key = _member_key(segment_id, profile_pk)
    delete = {
        "Delete": {
            "TableName": get_settings().data_table,
            "Key": {"pk": {"S": key["pk"]}, "sk": {"S": key["sk"]}},
            "ConditionExpression": "attribute_exists(pk)",
        }
    }
    try:
        transact([delete, size_change(segment_id, -1)])
        return True
    except ClientError as err:
        reasons = err.response.get("CancellationReasons") or []
        if not _condition_failed(err):
            raise
        if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
            return False  # not a member
    # The segment itself is deleted (a purge): its size no longer matters.
    try:
        _table().delete_item(Key=key, ConditionExpression=Attr("pk").exists())
    except ClientError as err:
        if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True
