"""The in-app feed of one user: the posts they are targeted by *now*, their read state and
reactions.

Targeting is live (docs/in-app.md): a post is in a user's feed while they match its audience —
current segment memberships, an inline rule evaluated on their profile, or everyone — between
its publication and `visible_until`, unless a membership excludes them. Email and push take a
snapshot at publish instead.

One open of the feed costs: the live posts (one Query of lean items), the user's memberships
and their state of those posts (one consistent BatchGetItem), and the posts' content (one
BatchGetItem, cached per container: published content never changes). The badge skips the
content. The first time a post is listed for a user, `seen` is recorded (one transaction per
~49 new posts).
"""

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from cohortcast.announcements.models import Announcement, Audience
from cohortcast.cache import TTLCache
from cohortcast.clock import isoformat, parse_timestamp
from cohortcast.errors import NotFound, Unprocessable
from cohortcast.storage import announcements as announcement_store
from cohortcast.storage import feed as store
from cohortcast.storage import keys
from cohortcast.storage import profiles as profile_store
from cohortcast.storage.feed import FeedPost, PostState, StateChange
from cohortcast.storage.profiles import ProfileRecord
from cohortcast.workspace import service as workspace

REACTIONS = ("up", "down", "love")
MAX_COMMENT = 1000
WRITE_ATTEMPTS = 3  # a change refused because the state moved meanwhile is re-read and retried
CONTENT_CACHE_SECONDS = 300.0
_contents: TTLCache[str, Announcement] = TTLCache(CONTENT_CACHE_SECONDS, max_entries=512)
_audiences: TTLCache[str, Any] = TTLCache(CONTENT_CACHE_SECONDS, max_entries=512)


@dataclass(frozen=True, slots=True)
class FeedEntry:
    post: FeedPost
    announcement: Announcement
    state: PostState
    segment_id: str | None  # the targeted segment the user is counted under (None: everyone/rule)
    title: str = ""  # rendered for this user (feed pages only)
    html: str = ""

    @property
    def read(self) -> bool:
        return self.state.read is not None


@dataclass(frozen=True, slots=True)
class Reaction:
    reaction: str
    comment: str | None


@dataclass(frozen=True, slots=True)
class FeedPage:
    entries: list[FeedEntry]
    unread: int
    next_cursor: str | None


# -- who sees what ---------------------------------------------------------------------------------


class _User:
    """What targeting needs of one user, read once per request (the profile only if a rule asks)."""

    def __init__(self, user_id: str, member_of: frozenset[str], now: datetime) -> None:
        self.user_id, self.member_of, self.now = user_id, member_of, now
        self.stale: list[str] = []  # posts in their state that are no longer in the feed
        self._profile: ProfileRecord | bool | None = False

    def profile(self) -> ProfileRecord | None:
        if self._profile is False:
            self._profile = profile_store.get(keys.profile_pk(user_id=self.user_id))
        return self._profile  # type: ignore[return-value]


def _audience(post: FeedPost) -> Audience:
    return _audiences.get_or_load(post.announcement_id, lambda: Audience.model_validate(post.audience))


def _inline_rule(post: FeedPost) -> Any:
    # lazy: the rule engine loads only for a feed that has a post with an inline rule
    from cohortcast.segments.inline import InlineRule

    return _audiences.get_or_load(f"rule:{post.announcement_id}", lambda: InlineRule(post.audience["rule"]))


def _targeting(post: FeedPost, user: _User) -> tuple[bool, str | None]:
    """(targeted now, the segment the user is counted under)."""
    audience = _audience(post)
    if user.member_of & set(audience.exclude_segments):
        return False, None
    if audience.everyone:
        return True, None
    if audience.segments:
        first = next((s for s in audience.segments if s in user.member_of), None)
        return first is not None, first
    if audience.rule is not None:
        record = user.profile()
        if record is None:
            return False, None
        return _inline_rule(post).matches(record, user.member_of, user.now, workspace.retention_days()), None
    return False, None


def is_live(post: FeedPost, now: datetime) -> bool:
    if parse_timestamp(post.published_at) > now:
        return False
    return post.visible_until is None or parse_timestamp(post.visible_until) > now


def _ordered(posts: Iterable[FeedPost]) -> list[FeedPost]:
    """Pinned first, then newest first (ids are ULIDs: their order is the creation order)."""
    return sorted(posts, key=lambda p: (not p.pinned, _negated(p.published_at), _negated(p.announcement_id)))


def _negated(text: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in text)


def _visible(
    user_id: str, now: datetime
) -> tuple[list[tuple[FeedPost, str | None]], dict[str, PostState], "_User"]:
    """The posts this user is targeted by now, in feed order, and their state of each."""
    posts = [p for p in store.all_posts() if is_live(p, now)]
    membership, stored = store.read_user(user_id, keys.profile_pk(user_id=user_id))
    states = {p.announcement_id: stored.get(p.announcement_id) or PostState(p.announcement_id) for p in posts}
    user = _User(user_id, frozenset(membership.segments) if membership else frozenset(), now)
    user.stale = [a for a in stored if a not in states]
    visible = []
    for post in _ordered(posts):
        targeted, segment_id = _targeting(post, user)
        if targeted:
            visible.append((post, segment_id))
    return visible, states, user


def contents_of(announcement_ids: list[str]) -> dict[str, Announcement]:
    contents: dict[str, Announcement] = {}
    missing = []
    for announcement_id in announcement_ids:
        hit, content = _contents.get(announcement_id)
        if hit and content is not None:
            contents[announcement_id] = content
        else:
            missing.append(announcement_id)
    if missing:
        for announcement_id, document in announcement_store.get_announcements(missing).items():
            contents[announcement_id] = Announcement.model_validate(document)
            _contents.put(announcement_id, contents[announcement_id])
    return contents


# -- reading -------------------------------------------------------------------------------------------


def unread_count(user_id: str, now: datetime) -> int:
    visible, states, _user = _visible(user_id, now)
    return sum(1 for post, _ in visible if states[post.announcement_id].read is None)


def feed_page(user_id: str, now: datetime, *, limit: int, after: str | None = None) -> FeedPage:
    """Up to `limit` posts after the post `after` (the previous page's last), in feed order."""
    visible, states, user = _visible(user_id, now)
    unread = sum(1 for post, _ in visible if states[post.announcement_id].read is None)
    start = 0
    if after is not None:
        ids = [post.announcement_id for post, _ in visible]
        start = ids.index(after) + 1 if after in ids else len(ids)
    page = visible[start : start + limit]
    contents = contents_of([post.announcement_id for post, _ in page])
    entries = []
    for post, segment_id in page:
        announcement = contents.get(post.announcement_id)
        if announcement is None:
            continue
        title, html = _rendered(announcement, user)
        entries.append(FeedEntry(post, announcement, states[post.announcement_id], segment_id, title, html))
    entries = _record_seen(user, entries, now)
    more = start + limit < len(visible)
    return FeedPage(entries, unread, entries[-1].post.announcement_id if more and entries else None)


def _rendered(announcement: Announcement, user: _User) -> tuple[str, str]:
    """Title and sanitised HTML, personalised like the email: the same pipeline. The profile is
    read only for a post that uses {{ ... }}; a personalisation that fails for this user's
    traits shows the post as it renders with none."""

    compiled = _compiled(announcement.id, announcement.title, announcement.body)
    personal = "{" in announcement.title or "{" in announcement.body
    record = user.profile() if personal else None
    traits = dict(record.traits) if record is not None and isinstance(record.traits, dict) else {}
    try:
        return compiled.render_post(traits, user_id=user.user_id)
    except Unprocessable:
        return compiled.render_post({}, user_id=user.user_id)


@functools.lru_cache(maxsize=256)
def _compiled(announcement_id: str, title: str, body: str) -> Any:
    from cohortcast.announcements.render import compile_announcement  # lazy: as in _rendered

    return compile_announcement(title, body)


def _record_seen(user: _User, entries: list[FeedEntry], now: datetime) -> list[FeedEntry]:
    """`seen` once per user and post, counted under the segment they were targeted through
    (and the state of posts gone from the feed dropped, which keeps the item small)."""
    at = isoformat(now)
    changes = [
        _change(entry, replace(entry.state, seen=at), now) for entry in entries if entry.state.seen is None
    ]
    if not changes:
        return entries
    applied = {c.new.announcement_id: c.new for c in store.apply(user.user_id, changes, stale=user.stale)}
    # a group refused here was seen by a concurrent request, which counted it
    return [
        replace(e, state=applied[e.post.announcement_id]) if e.post.announcement_id in applied else e
        for e in entries
    ]


# -- changing ------------------------------------------------------------------------------------------


def _change(
    entry: FeedEntry,
    new: PostState,
    now: datetime,
    *,
    reaction_changed: bool = False,
    comment: str | None = None,
) -> StateChange:
    previous = entry.state
    segment = previous.segment if previous.seen is not None else (entry.segment_id or "")
    new = replace(new, segment=segment, seen=new.seen or isoformat(now))
    deltas: dict[str, int] = {}
    if previous.seen is None:
        deltas["in_app.seen"] = 1
    if previous.read is None and new.read is not None:
        deltas["in_app.read"] = 1
    if previous.reaction != new.reaction:
        if previous.reaction:
            deltas[f"in_app.reaction.{previous.reaction}"] = -1
        if new.reaction:
            deltas[f"in_app.reaction.{new.reaction}"] = 1
    if previous.commented != new.commented:
        deltas["in_app.comments"] = 1 if new.commented else -1
    return StateChange(
        previous=previous,
        new=new,
        counts={segment or None: deltas},
        reaction_at=isoformat(now) if reaction_changed else None,
        comment=comment,
        expires_at=_expires_at(entry.post, now),
    )


def _expires_at(post: FeedPost, now: datetime) -> int:
    """A state item lives as long as its post can be shown, and at least the retention."""
    kept = workspace.expires_at(now)
    if post.visible_until is not None:
        return max(kept, int(parse_timestamp(post.visible_until).timestamp()))
    return kept


def _entry(user_id: str, announcement_id: str, now: datetime) -> FeedEntry:
    """The post as this user sees it now; 404 when it does not exist or is not for them."""
    visible, states, _user = _visible(user_id, now)
    for post, segment_id in visible:
        if post.announcement_id == announcement_id:
            contents = contents_of([announcement_id])
            if announcement_id in contents:
                return FeedEntry(post, contents[announcement_id], states[announcement_id], segment_id)
    raise NotFound(f"no announcement with id {announcement_id!r} in this feed", code="announcement_not_found")


def _retrying(
    user_id: str, announcement_id: str, now: datetime, edit: Callable[[FeedEntry], StateChange | None]
) -> FeedEntry:
    for _ in range(WRITE_ATTEMPTS):
        entry = _entry(user_id, announcement_id, now)
        change = edit(entry)
        if change is None or store.apply(user_id, [change]):
            return entry if change is None else replace(entry, state=change.new)
    raise RuntimeError(f"the feed state of {announcement_id} kept changing; try again")


def mark_read(user_id: str, announcement_id: str, now: datetime) -> FeedEntry:
    def edit(entry: FeedEntry) -> StateChange | None:
        if entry.state.read is not None:
            return None
        return _change(entry, replace(entry.state, read=isoformat(now)), now)

    return _retrying(user_id, announcement_id, now, edit)


def mark_all_read(user_id: str, now: datetime) -> int:
    """Mark every post in the user's feed read; how many were unread."""
    marked = 0
    for _ in range(WRITE_ATTEMPTS):
        visible, states, _user = _visible(user_id, now)
        unread = [(p, s) for p, s in visible if states[p.announcement_id].read is None]
        if not unread:
            return marked
        contents = contents_of([p.announcement_id for p, _ in unread])
        changes = [
            _change(entry, replace(entry.state, read=isoformat(now)), now)
            for post, segment_id in unread
            if post.announcement_id in contents
            for entry in [
                FeedEntry(post, contents[post.announcement_id], states[post.announcement_id], segment_id)
            ]
        ]
        marked += len(store.apply(user_id, changes))
    return marked


def react(user_id: str, announcement_id: str, reaction: str, comment: str | None, now: datetime) -> Reaction:
    """One reaction per user and post, changeable; a comment given replaces the previous one."""

    def edit(entry: FeedEntry) -> StateChange | None:
        commented = entry.state.commented if comment is None else bool(comment)
        if entry.state.reaction == reaction and comment is None:
            return None
        new = replace(entry.state, reaction=reaction, commented=commented)
        return _change(entry, new, now, reaction_changed=True, comment=comment)

    _retrying(user_id, announcement_id, now, edit)
    kept = comment if comment is not None else store.get_comment(announcement_id, user_id)
    return Reaction(reaction=reaction, comment=kept or None)


def clear_caches() -> None:
    _contents.clear()
    _audiences.clear()
