"""The in-app feed's items (see docs/data-model.md, "In-app feed").

- `FEED` / `<announcement id>`: one lean item per published in-app announcement (who it is
  for, when, pinned, labels; no body), so the list of live posts is one small Query however
  long the bodies are. It expires with `visible_until`.
- `DLV#<user>` / `FEED#<announcement id>`: what one user did with one post (seen, read,
  reaction), next to their delivery records, so erasure finds it with them.
- `ANN#<announcement id>` / `REACTION#<user>`: the user's reaction and comment, in the
  announcement's partition, for paging the comments; written with the state item.

Every change goes through `delivery.write_all` with its counter deltas: a state item and the
announcement's `in_app.*` counters change in one transaction, each state item only if it is
still as read (`version`), so nothing is counted twice or lost.
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
    """One user's state of one post; `version` 0 = never written."""

    announcement_id: str
    seen_at: str | None = None
    read_at: str | None = None
    reaction: str | None = None
    comment: str | None = None
    segment_id: str | None = None  # the targeted segment the user was counted under
    version: int = 0


@dataclass(slots=True)
class StateChange:
    user_id: str
    previous: PostState
    new: PostState
    counts: dict[str | None, dict[str, int]] = field(default_factory=dict)  # {segment id: deltas}
    reaction_at: str | None = None  # the reaction (and comment) item changes too
    expires_at: int | None = None


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


def state_key(user_id: str, announcement_id: str) -> dict[str, str]:
    return {"pk": keys.delivery_pk(user_id), "sk": keys.feed_state_sk(announcement_id)}


def _post_state(announcement_id: str, item: dict[str, Any] | None) -> PostState:
    if item is None:
        return PostState(announcement_id)
    return PostState(
        announcement_id=announcement_id,
        seen_at=item.get("seen_at"),
        read_at=item.get("read_at"),
        reaction=item.get("reaction"),
        comment=item.get("comment"),
        segment_id=item.get("segment_id"),
        version=int(item.get("version", 0)),
    )


def read_user(
    user_id: str, profile_pk: str, announcement_ids: Sequence[str]
) -> tuple[MembershipState | None, dict[str, PostState]]:
    """The user's segment memberships and their state of these posts: one `BatchGetItem` for up
    to 99 posts (consistent, so a read-all is seen by the badge right after)."""
    membership_key = {"pk": keys.membership_state_pk(profile_pk), "sk": keys.MEMBERSHIP_STATE_SK}
    key_list = [membership_key] + [state_key(user_id, a) for a in announcement_ids]
    found = {
        (i["pk"], i["sk"]): i for i in dynamo.batch_get(get_settings().data_table, key_list, consistent=True)
    }
    membership = found.get((membership_key["pk"], membership_key["sk"]))
    states = {}
    for announcement_id in announcement_ids:
        key = state_key(user_id, announcement_id)
        states[announcement_id] = _post_state(announcement_id, found.get((key["pk"], key["sk"])))
    return (state_from_item(membership) if membership else None), states


def read_states(user_ids: Iterable[str], announcement_id: str) -> dict[str, PostState]:
    """These users' state of one post (the deliverer's `email_if_unread_after` check)."""
    ids = list(dict.fromkeys(user_ids))
    items = dynamo.batch_get(get_settings().data_table, [state_key(u, announcement_id) for u in ids])
    by_user = {keys.user_id_of_delivery_pk(i["pk"]): i for i in items}
    return {u: _post_state(announcement_id, by_user.get(u)) for u in ids}


def _state_write(change: StateChange) -> ledger_store.LedgerWrite:
    new, previous = change.new, change.previous
    item: dict[str, Any] = {
        **state_key(change.user_id, new.announcement_id),
        "kind": "feed_state",
        "version": previous.version + 1,
        **{
            name: value
            for name in ("seen_at", "read_at", "reaction", "comment", "segment_id")
            if (value := getattr(new, name)) is not None
        },
    }
    if change.expires_at is not None:
        item["expires_at"] = change.expires_at
    if previous.version == 0:
        operations = [ledger_store.put(item, "attribute_not_exists(pk)")]
    else:
        operations = [ledger_store.put(item, "version = :read", values={":read": previous.version})]
    if change.reaction_at is not None:
        reaction_key = keys.reaction_key(new.announcement_id, change.user_id)
        if new.reaction is None:
            operations.append(ledger_store.delete(reaction_key))
        else:
            reaction: dict[str, Any] = {
                **reaction_key,
                "kind": "reaction",
                "user_id": change.user_id,
                "reaction": new.reaction,
                "at": change.reaction_at,
            }
            if new.comment is not None:
                reaction["comment"] = new.comment
            if change.expires_at is not None:
                reaction["expires_at"] = change.expires_at
            operations.append(ledger_store.put(reaction))
    counts = {(new.announcement_id, segment): deltas for segment, deltas in change.counts.items()}
    return ledger_store.LedgerWrite(items=operations, tag=change, counts=counts)


def apply(changes: Iterable[StateChange]) -> list[StateChange]:
    """Apply each change whose state item is still as read, with its counters; the applied ones."""
    applied = ledger_store.write_all(_state_write(c) for c in changes)
    return [write.tag for write in applied]


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
