"""The in-app feed API for browsers and servers: the write key (public) plus the user's identity
hash `X-Cohortcast-User-Hash: hex(HMAC-SHA256(identity_secret, userId))`, which the product's
backend computes; without it no one reads or changes a user's feed. CORS from the workspace's
`allowed_origins` (see `cors_headers`)."""

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel, ConfigDict, Field

from cohortcast.announcements.models import CallToAction
from cohortcast.auth.identity import verify_user_hash
from cohortcast.clock import utcnow
from cohortcast.errors import Unauthorized
from cohortcast.feed import service
from cohortcast.feed.service import MAX_COMMENT, FeedEntry
from cohortcast.http.auth import caller_from_key, key_from_authorization
from cohortcast.storage import cursors
from cohortcast.workspace.service import get_workspace_settings

router = Router()

USER_HASH_HEADER = "X-Cohortcast-User-Hash"
UserId = Annotated[str, Query(alias="userId", min_length=1, max_length=256, description="the user's userId")]
AnnouncementId = Annotated[str, Path(min_length=1, max_length=64)]


class FeedItem(BaseModel):
    id: str
    title: str
    html: str = Field(description="the body, rendered and sanitised like the email's")
    labels: list[str]
    image_url: str | None
    cta: CallToAction | None
    pinned: bool
    published_at: str
    read: bool
    reaction: Literal["up", "down", "love"] | None


class Feed(BaseModel):
    items: list[FeedItem]
    unread: int = Field(description="unread posts in the whole feed, not only this page")
    next_cursor: str | None


class Unread(BaseModel):
    unread: int


class UserBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    user_id: str = Field(alias="userId", min_length=1, max_length=256)


class ReactionBody(UserBody):
    reaction: Literal["up", "down", "love"]
    comment: str | None = Field(default=None, max_length=MAX_COMMENT)


class Reaction(BaseModel):
    reaction: Literal["up", "down", "love"]
    comment: str | None


def _authorized(user_id: str) -> str:
    """401 unless the write (or admin) key is valid and the hash is this user's."""
    event = router.current_event
    key = key_from_authorization(event.get_header_value("Authorization"))
    if key is None:
        key = (event.query_string_parameters or {}).get("writeKey")
    if caller_from_key(key).scope not in ("write", "admin"):
        raise Unauthorized("missing or unknown write key (HTTP Basic, or ?writeKey=)")
    if not verify_user_hash(user_id, event.get_header_value(USER_HASH_HEADER), utcnow()):
        raise Unauthorized(
            f"missing or wrong {USER_HASH_HEADER}: hex(HMAC-SHA256(identity secret, userId)), "
            "computed by your backend",
            code="invalid_user_hash",
        )
    return user_id


def _item(entry: FeedEntry) -> FeedItem:
    announcement = entry.announcement
    return FeedItem(
        id=announcement.id,
        title=entry.title,
        html=entry.html,
        labels=announcement.labels,
        image_url=announcement.image_url,
        cta=announcement.cta,
        pinned=announcement.pinned,
        published_at=entry.post.published_at,
        read=entry.read,
        reaction=entry.state.reaction,  # type: ignore[arg-type]
    )


@router.get("/v1/feed", summary="A user's in-app feed: pinned first, then newest", tags=["feed"])
def get_feed(
    user_id: UserId,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Feed:
    user_id = _authorized(user_id)
    after = str(cursors.decode(cursor)) if cursor else None
    page = service.feed_page(user_id, utcnow(), limit=limit, after=after)
    return Feed(
        items=[_item(e) for e in page.entries],
        unread=page.unread,
        next_cursor=cursors.encode(page.next_cursor) if page.next_cursor else None,
    )


@router.get("/v1/feed/unread", summary="How many posts the user has not read (the badge)", tags=["feed"])
def get_unread(user_id: UserId) -> Unread:
    return Unread(unread=service.unread_count(_authorized(user_id), utcnow()))


@router.post("/v1/feed/read-all", summary="Mark every post in the user's feed read", tags=["feed"])
def read_all(body: UserBody) -> dict[str, int]:
    return {"read": service.mark_all_read(_authorized(body.user_id), utcnow())}


@router.post("/v1/feed/<announcement_id>/read", summary="Mark one post read", tags=["feed"])
def read_one(announcement_id: AnnouncementId, body: UserBody) -> dict[str, bool]:
    service.mark_read(_authorized(body.user_id), announcement_id, utcnow())
    return {"read": True}


@router.post(
    "/v1/feed/<announcement_id>/reaction",
    summary="React to a post (one reaction per user, changeable), optionally with a comment",
    tags=["feed"],
)
def react(announcement_id: AnnouncementId, body: ReactionBody) -> Reaction:
    done = service.react(_authorized(body.user_id), announcement_id, body.reaction, body.comment, utcnow())
    return Reaction(reaction=done.reaction, comment=done.comment)  # type: ignore[arg-type]


# -- CORS -----------------------------------------------------------------------------------------

ALLOWED_HEADERS = f"Authorization, Content-Type, {USER_HASH_HEADER}"


def cors_headers(origin: str | None) -> dict[str, str]:
    """The workspace's `allowed_origins`: "*" lets any page call the feed (the write key is
    public by design; the user hash protects each feed), else only the listed origins."""
    allowed = get_workspace_settings().allowed_origins
    if "*" in allowed:
        allow = "*"
    elif origin and origin in allowed:
        allow = origin
    else:
        return {"Vary": "Origin"}
    return {
        "Access-Control-Allow-Origin": allow,
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Allow-Headers": ALLOWED_HEADERS,
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }
