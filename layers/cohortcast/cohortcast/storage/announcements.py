"""DataTable access for announcements: the announcement, its counters and its publish plan.

Layout and reasons: docs/data-model.md ("Announcements and delivery").
"""

import json
import secrets
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Key
from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from cohortcast.config import get_settings
from cohortcast.storage import aws, cursors, dynamo, keys


class StatusConflict(Exception):
    """The announcement is not in the status the change expected."""


@dataclass(slots=True)
class PlannedPage:
    """One page of the audience snapshot: who, attributed to which segment, and where to go next."""

    page: int
    recipients: list[tuple[str, str | None]]  # (user_id, segment_id)
    next_cursor: str | None
    planned_at: str | None = None  # when it was recorded (progress, for the stalled sweep)


@dataclass(slots=True)
class StallCheck:
    """An announcement in `publishing` whose progress check is due (DueIndex `PUBLISH#0`)."""

    announcement_id: str
    status: str
    due_at: str
    recoveries: int


def _table() -> Any:
    return aws.table(get_settings().data_table)


# -- the announcement --------------------------------------------------------------------------

_DOC_FIELDS = (
    "title",
    "body",
    "topic",
    "channels",
    "priority",
    "audience",
    "local_time",
    "labels",
    "image_url",
    "cta",
    "pinned",
    "visible_until",
    "email_if_unread_after",
)
_TIME_FIELDS = ("send_at", "created_at", "published_at", "completed_at", "cancelled_at", "pages")


def put_announcement(document: Mapping[str, Any], *, stall_check_at: str | None = None) -> None:
    """Create; `document` is Announcement.model_dump(mode="json"). `stall_check_at`: when the
    stalled-publishing sweep should look at it (immediate announcements, created `publishing`)."""
    item = {
        "pk": keys.ANNOUNCEMENTS_PK,
        "sk": keys.announcement_sk(document["id"]),
        "kind": "announcement",
        "status": document["status"],
        # The content is one JSON string: read whole, never queried by field, any JSON round-trips.
        "doc": json.dumps({k: document.get(k) for k in _DOC_FIELDS}, separators=(",", ":")),
        **{k: document[k] for k in _TIME_FIELDS if document.get(k) is not None},
    }
    if stall_check_at is not None:
        item.update(due_pk=keys.PUBLISH_DUE_PK, due_at=stall_check_at)
    _table().put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")


def _document(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": item["sk"],
        "status": item["status"],
        **json.loads(item["doc"]),
        **{k: cursors.plain(item[k]) for k in _TIME_FIELDS if k in item},
    }


def get_announcement(announcement_id: str) -> dict[str, Any] | None:
    item = (
        _table()
        .get_item(Key={"pk": keys.ANNOUNCEMENTS_PK, "sk": keys.announcement_sk(announcement_id)})
        .get("Item")
    )
    return _document(item) if item else None


def get_announcements(announcement_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Several announcements by id, in one `BatchGetItem` per 100."""
    key_list = [{"pk": keys.ANNOUNCEMENTS_PK, "sk": keys.announcement_sk(a)} for a in announcement_ids]
    return {item["sk"]: _document(item) for item in dynamo.batch_get(get_settings().data_table, key_list)}


def list_announcements(limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first (ids are ULIDs). The cursor is opaque to callers."""
    query: dict[str, Any] = {
        "KeyConditionExpression": Key("pk").eq(keys.ANNOUNCEMENTS_PK),
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if cursor:
        query["ExclusiveStartKey"] = {"pk": keys.ANNOUNCEMENTS_PK, "sk": str(cursors.decode(cursor))}
    response = _table().query(**query)
    last_key = response.get("LastEvaluatedKey")
    next_cursor = cursors.encode(last_key["sk"]) if last_key else None
    return [_document(item) for item in response.get("Items", [])], next_cursor


def move_status(
    announcement_id: str,
    from_statuses: tuple[str, ...],
    to_status: str,
    fields: Mapping[str, Any] | None = None,
    *,
    stall_check_at: str | None = None,
    clear_stall_check: bool = False,
) -> None:
    """Conditional status change; raises StatusConflict when the current status is not allowed.

    `stall_check_at` puts the announcement in the stalled-publishing sweep's index (moving to
    `publishing`); `clear_stall_check` takes it out (leaving `publishing`)."""
    fields = dict(fields or {})
    if stall_check_at is not None:
        fields.update(due_pk=keys.PUBLISH_DUE_PK, due_at=stall_check_at)
    names = {"#status": "status", **{f"#f{i}": name for i, name in enumerate(fields)}}
    values: dict[str, Any] = {":to": to_status, **{f":v{i}": v for i, v in enumerate(fields.values())}}
    allowed = []
    for i, status in enumerate(from_statuses):
        values[f":from{i}"] = status
        allowed.append(f":from{i}")
    sets = ", ".join(["#status = :to", *(f"#f{i} = :v{i}" for i in range(len(fields)))])
    removes = " REMOVE due_pk, due_at" if clear_stall_check else ""
    moved = dynamo.conditional_write(
        _table().update_item,
        Key={"pk": keys.ANNOUNCEMENTS_PK, "sk": keys.announcement_sk(announcement_id)},
        UpdateExpression=f"SET {sets}{removes}",
        ConditionExpression=f"attribute_exists(pk) AND #status IN ({', '.join(allowed)})",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )
    if moved is None:
        raise StatusConflict(announcement_id)


# -- counters ----------------------------------------------------------------------------------


def _counter_update(announcement_id: str, sk: str, deltas: Mapping[str, int]) -> dict[str, Any]:
    names = {f"#c{i}": name for i, name in enumerate(deltas)}
    values = {f":c{i}": int(delta) for i, delta in enumerate(deltas.values())}
    names["#kind"] = "kind"
    values[":kind"] = "counts"
    adds = ", ".join(f"#c{i} :c{i}" for i in range(len(deltas)))
    return {
        "Key": {"pk": keys.announcement_pk(announcement_id), "sk": sk},
        "UpdateExpression": f"SET #kind = :kind ADD {adds}",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def add_counts(announcement_id: str, segment_id: str | None, deltas: Mapping[str, int]) -> None:
    """Atomic ADD on the total counters and, when `segment_id` is given, that segment's counters.

    A state move is one call with -1/+1 (e.g. {"in_doubt": -1, "sent": 1}). Both items are
    updated in one transaction so total and per-segment figures never disagree.
    """
    deltas = {name: int(delta) for name, delta in deltas.items() if delta}
    if not deltas:
        return
    updates = [_counter_update(announcement_id, keys.COUNTS_TOTAL_SK, deltas)]
    if segment_id is not None:
        updates.append(_counter_update(announcement_id, keys.counts_segment_sk(segment_id), deltas))
    if len(updates) == 1:
        _table().update_item(**updates[0])
        return
    dynamo.transact([{"Update": _low_level(update)} for update in updates])


CountKey = tuple[str, str | None]  # (announcement id, segment id or None)


def counter_item_count(count_keys: Iterable[CountKey]) -> int:
    """How many transaction items `counter_items` needs for these keys (a total per announcement
    plus one per segment): callers size their transactions with it."""
    unique = set(count_keys)
    return len({a for a, _ in unique}) + sum(1 for _, s in unique if s is not None)


def counter_items(counts: Mapping[CountKey, Mapping[str, int]]) -> list[dict[str, Any]]:
    """`TransactWriteItems` updates that ADD `counts` to each segment's and each announcement's
    total counters, for the resource's client (plain values), so a ledger change and the counts
    it implies commit together. Deltas are summed per item; zero entries are left out."""
    per_item: dict[tuple[str, str], dict[str, int]] = {}
    for (announcement_id, segment_id), deltas in counts.items():
        targets = [keys.COUNTS_TOTAL_SK]
        if segment_id is not None:
            targets.append(keys.counts_segment_sk(segment_id))
        for sk in targets:
            bucket = per_item.setdefault((announcement_id, sk), {})
            for name, delta in deltas.items():
                bucket[name] = bucket.get(name, 0) + int(delta)
    items = []
    for (announcement_id, sk), deltas in per_item.items():
        deltas = {name: delta for name, delta in deltas.items() if delta}
        if deltas:
            update = _counter_update(announcement_id, sk, deltas)
            items.append({"Update": {"TableName": get_settings().data_table, **update}})
    return items


def get_counts(announcement_id: str) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """(total counters, {segment id: counters})."""
    total: dict[str, int] = {}
    by_segment: dict[str, dict[str, int]] = {}
    query: dict[str, Any] = {
        "KeyConditionExpression": Key("pk").eq(keys.announcement_pk(announcement_id))
        & Key("sk").begins_with("COUNTS#")
    }
    while True:
        response = _table().query(**query)
        for item in response.get("Items", []):
            counters = {k: int(v) for k, v in item.items() if k not in ("pk", "sk", "kind")}
            if item["sk"] == keys.COUNTS_TOTAL_SK:
                total = counters
            else:
                by_segment[item["sk"].removeprefix(keys.counts_segment_sk(""))] = counters
        if "LastEvaluatedKey" not in response:
            return total, by_segment
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]


# -- the publish plan --------------------------------------------------------------------------


def _page_item(announcement_id: str, page: PlannedPage, segment_ids: list[str | None]) -> dict[str, Any]:
    index = {segment_id: i for i, segment_id in enumerate(segment_ids)}
    packed = [[user_id, index[segment_id]] for user_id, segment_id in page.recipients]
    item: dict[str, Any] = {
        "pk": keys.publish_page_pk(announcement_id),
        "sk": keys.publish_page_sk(page.page),
        "kind": "publish_page",
        "segments": json.dumps(segment_ids),
        "recipients": zlib.compress(json.dumps(packed, separators=(",", ":")).encode(), 6),
        "count": len(page.recipients),
    }
    if page.next_cursor is not None:
        item["next_cursor"] = page.next_cursor
    if page.planned_at is not None:
        item["planned_at"] = page.planned_at
    return item


def _page(item: dict[str, Any]) -> PlannedPage:
    segment_ids = json.loads(item["segments"])
    raw = item["recipients"]
    packed = json.loads(zlib.decompress(bytes(raw.value if hasattr(raw, "value") else raw)))
    return PlannedPage(
        page=int(item["sk"]),
        recipients=[(user_id, segment_ids[i]) for user_id, i in packed],
        next_cursor=item.get("next_cursor"),
        planned_at=item.get("planned_at"),
    )


def last_page(announcement_id: str) -> PlannedPage | None:
    """The highest page recorded so far (the plan's progress), or None before page 0."""
    response = _table().query(
        KeyConditionExpression=Key("pk").eq(keys.publish_page_pk(announcement_id)),
        ScanIndexForward=False,
        Limit=1,
        ConsistentRead=True,
    )
    items = response.get("Items", [])
    return _page(items[0]) if items else None


# -- the stalled-publishing sweep (DueIndex `PUBLISH#0`) -----------------------------------------


def due_stall_checks(until: str, limit: int = 100) -> list[StallCheck]:
    """Announcements whose progress check is due: `publishing`, `due_at <= until`."""
    response = _table().query(
        IndexName="DueIndex",
        KeyConditionExpression=Key("due_pk").eq(keys.PUBLISH_DUE_PK) & Key("due_at").lte(until),
        Limit=limit,
    )
    return [
        StallCheck(
            announcement_id=item["sk"],
            status=item["status"],
            due_at=item["due_at"],
            recoveries=int(item.get("recoveries", 0)),
        )
        for item in response.get("Items", [])
    ]


def reschedule_stall_check(
    announcement_id: str, *, read_due_at: str, next_at: str | None, recovery: bool = False
) -> bool:
    """Move the check to `next_at` (None: out of the index), counting a recovery if asked.
    Conditional on the `due_at` read (finishing removes it), so overlapping sweeps act once."""
    expression = "SET due_at = :next" if next_at is not None else "REMOVE due_pk, due_at"
    values: dict[str, Any] = {":read": read_due_at}
    if next_at is not None:
        values[":next"] = next_at
    if recovery:
        expression += " ADD recoveries :one"
        values[":one"] = 1
    moved = dynamo.conditional_write(
        _table().update_item,
        Key={"pk": keys.ANNOUNCEMENTS_PK, "sk": keys.announcement_sk(announcement_id)},
        UpdateExpression=expression,
        ConditionExpression="due_at = :read",
        ExpressionAttributeValues=values,
    )
    return moved is not None


def get_page(announcement_id: str, page: int) -> PlannedPage | None:
    item = (
        _table()
        .get_item(
            Key={"pk": keys.publish_page_pk(announcement_id), "sk": keys.publish_page_sk(page)},
            ConsistentRead=True,
        )
        .get("Item")
    )
    return _page(item) if item else None


def forget_recipient(announcement_id: str, page: int, user_id: str) -> bool:
    """Erasure: the user's entries in a recorded page of the plan become placeholders that name
    nobody (a re-run of the page plans a recipient without a profile: skipped, counts add up),
    and a cursor naming them is dropped once the page after it is recorded (until then it is
    where publishing resumes). False when the page does not name the user (any more)."""
    key = {"pk": keys.publish_page_pk(announcement_id), "sk": keys.publish_page_sk(page)}
    item = _table().get_item(Key=key, ConsistentRead=True).get("Item")
    if item is None:
        return False
    planned = _page(item)
    recipients = [
        (f"erased-{secrets.token_hex(8)}" if recipient == user_id else recipient, segment_id)
        for recipient, segment_id in planned.recipients
    ]
    names_them = recipients != planned.recipients
    cursor = planned.next_cursor
    if (
        cursor
        and keys.profile_pk(user_id=user_id) in _strings(cursors.decode(cursor))
        and get_page(announcement_id, page + 1) is not None
    ):
        cursor, names_them = cursors.encode({}), True  # consumed: only "not the last page" matters
    if not names_them:
        return False
    scrubbed = PlannedPage(
        page=page, recipients=recipients, next_cursor=cursor, planned_at=planned.planned_at
    )
    _table().put_item(Item=_page_item(announcement_id, scrubbed, json.loads(item["segments"])))
    return True


def _strings(value: Any) -> set[str]:
    if isinstance(value, dict):
        return {s for inner in value.values() for s in _strings(inner)}
    if isinstance(value, list):
        return {s for inner in value for s in _strings(inner)}
    return {value} if isinstance(value, str) else set()


def plan_page(announcement_id: str, page: PlannedPage, planned: Mapping[str | None, int]) -> PlannedPage:
    """Record a page of the snapshot and ADD its `planned` counts, in one transaction, once.

    `planned` maps segment id (None = no segment) to deliveries planned. When the page was
    already recorded (a redelivered message, a crashed run), nothing is counted again and the
    stored page is returned, so a re-run republishes exactly the same recipients.
    """
    segment_ids = list(dict.fromkeys([*planned, *(s for _, s in page.recipients)]))
    total = sum(planned.values())
    actions: list[dict[str, Any]] = [
        {
            "Put": {
                "TableName": get_settings().data_table,
                "Item": _serialize(_page_item(announcement_id, page, segment_ids)),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
    ]
    if total:
        actions.append(
            {"Update": _low_level(_counter_update(announcement_id, keys.COUNTS_TOTAL_SK, {"planned": total}))}
        )
        for segment_id, count in planned.items():
            if segment_id is not None and count:
                update = _counter_update(
                    announcement_id, keys.counts_segment_sk(segment_id), {"planned": count}
                )
                actions.append({"Update": _low_level(update)})
    try:
        dynamo.transact(actions)
    except ClientError as err:
        if not _first_condition_failed(err):
            raise
        existing = get_page(announcement_id, page.page)
        if existing is None:
            raise
        return existing
    return page


def _first_condition_failed(err: ClientError) -> bool:
    """The page's own put was refused: the page is recorded already."""
    if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
        return True
    return dynamo.cancellation_codes(err)[:1] == [dynamo.CONDITION_FAILED]


# -- low-level helpers (transactions take the client's attribute-value shape) -------------------

_SERIALIZER = TypeSerializer()


def _serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _SERIALIZER.serialize(v) for k, v in item.items()}


def _low_level(update: dict[str, Any]) -> dict[str, Any]:
    return {
        "TableName": get_settings().data_table,
        "Key": _serialize(update["Key"]),
        "UpdateExpression": update["UpdateExpression"],
        "ExpressionAttributeNames": update["ExpressionAttributeNames"],
        "ExpressionAttributeValues": _serialize(update["ExpressionAttributeValues"]),
    }
