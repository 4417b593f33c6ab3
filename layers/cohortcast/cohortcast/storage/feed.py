"""The in-app feed's items (see docs/data-model.md, "In-app feed").

- `FEED` / `<announcement id>`: one lean item per published in-app announcement (who it is
  for, when, pinned, labels; no body), so the list of live posts is one small Query however
  long the bodies are. It expires with `visible_until`.
- `DLV#<user>` / `FEED`: what one user did with each post (seen, read, reaction, the segment
  they are counted under), one item, next to their delivery records, so the feed reads it in
  the same request as the memberships and erasure finds it with them.
- `ANN#<announcement id>` / `REACTION#<user>`: the user's reaction and comment, in the
  announcement's partition, for paging the comments; written with the state item.

Every change goes through `delivery.write_all` with its counter deltas: the state item and the
announcements' `in_app.*` counters change in one transaction, each field only if it is still
as read, so nothing is counted twice or lost.
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.conditions import Key

from cohortcast.config import get_settings
from cohortcast.storage import aws, cursors, dynamo, keys
from cohortcast.storage import delivery as ledger_store
from cohortcast.storage.segments import MembershipState, state_from_item


@dataclass(frozen=True, slots=True)
class FeedPost:
    announcement_id: str
    published_at: str
    audience: dict[str, Any]
    pinned: bool = False
    labels: tuple[str, ...] = ()
    visible_until: str | None = None
    public: bool = False  # audience everyone, no exclusions: on the public changelog


@dataclass(slots=True)
class PostState:
    """One user's state of one post (all None: never listed to them)."""

    announcement_id: str
    seen: str | None = None  # when first listed in their feed
    read: str | None = None
    reaction: str | None = None
    commented: bool = False  # the comment itself is in the reaction item
    segment: str | None = None  # the targeted segment the user is counted under ("" = none)


@dataclass(slots=True)
class StateChange:
    previous: PostState
    new: PostState
    counts: dict[str | None, dict[str, int]] = field(default_factory=dict)  # {segment id: deltas}
    reaction_at: str | None = None  # the reaction item changes too
    comment: str | None = None  # its new comment (None: keep)
    expires_at: int | None = None  # of the reaction item


def _table() -> Any:
    return aws.table(get_settings().data_table)


# -- posts ---------------------------------------------------------------------------------------


def put_post(post: FeedPost, *, expires_at: int | None) -> None:
    """Publish (or publish again: idempotent) a post to the feed."""
    item: dict[str, Any] = {
        "pk": keys.FEED_POSTS_PK,
        "sk": post.announcement_id,
        "kind": "feed_post",
        "published_at": post.published_at,
        "doc": json.dumps(
            {
                "audience": post.audience,
                "pinned": post.pinned,
                "labels": list(post.labels),
                "visible_until": post.visible_until,
            },
            separators=(",", ":"),
        ),
        "public": post.public,
    }
    if expires_at is not None:
        item["expires_at"] = expires_at
    _table().put_item(Item=item)


def _post(item: dict[str, Any]) -> FeedPost:
    doc = json.loads(item["doc"])
    return FeedPost(
        announcement_id=item["sk"],
        published_at=item["published_at"],
        audience=doc.get("audience") or {},
        pinned=bool(doc.get("pinned")),
        labels=tuple(doc.get("labels") or ()),
        visible_until=doc.get("visible_until"),
        public=bool(item.get("public")),
    )


def all_posts() -> list[FeedPost]:
    """Every post still in the feed partition (expired ones go with their TTL), newest first."""
    query: dict[str, Any] = {
        "KeyConditionExpression": Key("pk").eq(keys.FEED_POSTS_PK),
        "ScanIndexForward": False,
    }
    posts: list[FeedPost] = []
    while True:
        response = _table().query(**query)
        posts.extend(_post(item) for item in response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return posts
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def get_post(announcement_id: str) -> FeedPost | None:
    item = _table().get_item(Key={"pk": keys.FEED_POSTS_PK, "sk": announcement_id}).get("Item")
    return _post(item) if item else None


# -- a user's state -------------------------------------------------------------------------------

# One item per user holds their state of every post (`<field>_<announcement id>` attributes),
# so the feed reads it with the memberships in one request however many posts are live.
_FIELDS = ("seen", "read", "reaction", "commented", "segment")
MAX_POSTS_PER_WRITE = 30  # the state item + ≤30 reaction items + 2 counter items per post ≤ 100


def summary_key(user_id: str) -> dict[str, str]:
    return {"pk": keys.delivery_pk(user_id), "sk": keys.FEED_STATE_SK}


def _attribute(field_name: str, announcement_id: str) -> str:
    return f"{field_name}_{announcement_id}"


def _states(item: dict[str, Any] | None) -> dict[str, PostState]:
    states: dict[str, PostState] = {}
    for name, value in (item or {}).items():
        field_name, _, announcement_id = name.partition("_")
        if field_name in _FIELDS and announcement_id:
            state = states.setdefault(announcement_id, PostState(announcement_id))
            setattr(state, field_name, bool(value) if field_name == "commented" else value)
    return states


def read_user(user_id: str, profile_pk: str) -> tuple[MembershipState | None, dict[str, PostState]]:
    """The user's segment memberships and their state of every post: one consistent
    `BatchGetItem` of two items (consistent, so a read-all is seen by the badge right after)."""
    membership_key = {"pk": keys.membership_state_pk(profile_pk), "sk": keys.MEMBERSHIP_STATE_SK}
    found = {
        (i["pk"], i["sk"]): i
        for i in dynamo.batch_get(
            get_settings().data_table, [membership_key, summary_key(user_id)], consistent=True
        )
    }
    membership = found.get((membership_key["pk"], membership_key["sk"]))
    summary = summary_key(user_id)
    states = _states(found.get((summary["pk"], summary["sk"])))
    return (state_from_item(membership) if membership else None), states


def read_states(user_ids: Iterable[str], announcement_id: str) -> dict[str, PostState]:
    """These users' state of one post (the deliverer's `email_if_unread_after` check)."""
    ids = list(dict.fromkeys(user_ids))
    projection = ", ".join(["pk", *(_attribute(f, announcement_id) for f in _FIELDS)])
    items = dynamo.batch_get(get_settings().data_table, [summary_key(u) for u in ids], projection=projection)
    by_user = {keys.user_id_of_delivery_pk(i["pk"]): _states(i) for i in items}
    return {u: by_user.get(u, {}).get(announcement_id) or PostState(announcement_id) for u in ids}


def get_comment(announcement_id: str, user_id: str) -> str | None:
    item = _table().get_item(Key=keys.reaction_key(announcement_id, user_id)).get("Item")
    return item.get("comment") if item else None


def _summary_write(
    user_id: str, changes: Sequence[StateChange], stale: Sequence[str]
) -> ledger_store.LedgerWrite:
    """One conditional update of the user's state item for these posts — each changed field only
    if it is still as read — with the reaction items and the counters, in one transaction."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    sets, removes, conditions = ["#kind = :kind"], [], []
    names["#kind"], values[":kind"] = "kind", "feed_state"
    operations: list[dict[str, Any]] = []
    counts: dict[tuple[str, str | None], dict[str, int]] = {}
    for index, change in enumerate(changes):
        previous, new = change.previous, change.new
        for field_name in _FIELDS:
            before, after = getattr(previous, field_name), getattr(new, field_name)
            if field_name == "commented":
                before, after = before or None, after or None
            if before == after:
                continue
            name, value = f"#f{index}{field_name}", f":f{index}{field_name}"
            names[name] = _attribute(field_name, new.announcement_id)
            if before is None:
                conditions.append(f"attribute_not_exists({name})")
            else:
                values[f"{value}0"] = before
                conditions.append(f"{name} = {value}0")
            if after is None:
                removes.append(name)
            else:
                values[value] = after
                sets.append(f"{name} = {value}")
        if change.reaction_at is not None:
            operations.append(_reaction_write(user_id, change))
        for segment, deltas in change.counts.items():
            counts[(new.announcement_id, segment)] = deltas
    for index, announcement_id in enumerate(stale):  # posts gone from the feed: forget them
        for field_name in _FIELDS:
            name = f"#s{index}{field_name}"
            names[name] = _attribute(field_name, announcement_id)
            removes.append(name)
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    update = ledger_store.update(
        summary_key(user_id),
        expression,
        condition=" AND ".join(conditions) or None,
        names=names,
        values=values,
    )
    return ledger_store.LedgerWrite(items=[update, *operations], tag=list(changes), counts=counts)


def _reaction_write(user_id: str, change: StateChange) -> dict[str, Any]:
    reaction_key = keys.reaction_key(change.new.announcement_id, user_id)
    if change.new.reaction is None:
        return ledger_store.delete(reaction_key)
    reaction: dict[str, Any] = {
        **reaction_key,
        "kind": "reaction",
        "user_id": user_id,
        "reaction": change.new.reaction,
        "at": change.reaction_at,
    }
    if change.comment is not None:
        reaction["comment"] = change.comment
    if change.expires_at is not None:
        reaction["expires_at"] = change.expires_at
    return ledger_store.put(reaction)


def apply(user_id: str, changes: Sequence[StateChange], *, stale: Sequence[str] = ()) -> list[StateChange]:
    """Apply the changes (≤30 posts per transaction) whose fields are still as read, with their
    counters; the applied ones. A group refused because one post moved meanwhile is not
    applied at all: the caller re-reads and tries again."""
    applied: list[StateChange] = []
    for start in range(0, max(len(changes), 1), MAX_POSTS_PER_WRITE):
        group = changes[start : start + MAX_POSTS_PER_WRITE]
        if not group and not stale:
            break
        write = _summary_write(user_id, group, stale if start == 0 else ())
        for done in ledger_store.write_all([write]):
            applied.extend(done.tag)
    return applied


def reactions_page(
    announcement_id: str, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Reactions (with their comments) to one announcement, by user id; opaque cursor."""
    query: dict[str, Any] = {
        "KeyConditionExpression": Key("pk").eq(keys.announcement_pk(announcement_id))
        & Key("sk").begins_with(keys.REACTION_PREFIX),
        "Limit": limit,
    }
    if cursor:
        query["ExclusiveStartKey"] = {
            "pk": keys.announcement_pk(announcement_id),
            "sk": keys.reaction_sk(str(cursors.decode(cursor))),
        }
    response = _table().query(**query)
    items = [
        {k: item.get(k) for k in ("user_id", "reaction", "comment", "at")}
        for item in response.get("Items", [])
    ]
    last = response.get("LastEvaluatedKey")
    return items, cursors.encode(last["sk"].removeprefix(keys.REACTION_PREFIX)) if last else None
