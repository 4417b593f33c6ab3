"""The public changelog: the in-app announcements meant for everyone (audience everyone, no
exclusions), newest first, optionally by label, as anyone on the web sees them (docs/in-app.md).

A post is listed while it is live: published (`published_at` ≤ now) and before its
`visible_until`. Bodies render with no traits, so personalisation shows its defaults; the
render of each post is cached per container (published content never changes).
"""

import functools
from dataclasses import dataclass
from datetime import datetime

from cohortcast.announcements.models import Announcement, CallToAction
from cohortcast.errors import BadRequest, NotFound, Unprocessable
from cohortcast.feed.service import contents_of, is_live
from cohortcast.observability import logger
from cohortcast.storage import cursors
from cohortcast.storage import feed as store
from cohortcast.storage.feed import FeedPost
from cohortcast.workspace.service import get_workspace_settings

MAX_ID_LENGTH = 64


@dataclass(frozen=True, slots=True)
class ChangelogEntry:
    announcement_id: str
    title: str
    html: str  # sanitised like the email's body
    labels: tuple[str, ...]
    image_url: str | None
    cta: CallToAction | None
    published_at: str


def _check_label(label: str | None) -> None:
    """A filter must name one of the workspace's labels (400 otherwise, listing them)."""
    known = get_workspace_settings().labels
    if label is not None and label not in known:
        raise BadRequest(
            f"unknown label {label[:40]!r}; the labels are {', '.join(known)}",
            {"in": "query", "pointer": "/label"},
            code="unknown_label",
        )


def changelog_page(
    label: str | None, limit: int, cursor: str | None, now: datetime
) -> tuple[list[ChangelogEntry], str | None]:
    """Up to `limit` live public posts (with `label`, when given) after `cursor`, newest first,
    and the cursor of the next page (None at the end). A bad cursor or label is a 400."""
    _check_label(label)
    # The lean FEED partition is one small Query: filter, order and page it here, by
    # publication time like the in-app feed (a scheduled post sits where it was published).
    posts = sorted(
        (
            p
            for p in store.all_posts()
            if p.public and is_live(p, now) and (label is None or label in p.labels)
        ),
        key=lambda p: (p.published_at, p.announcement_id),
        reverse=True,
    )
    start = 0
    if cursor is not None:
        after = cursors.decode(cursor)
        ids = [p.announcement_id for p in posts]
        start = ids.index(after) + 1 if after in ids else len(ids)
    page = posts[start : start + limit]
    more = start + limit < len(posts)
    return _entries(page), cursors.encode(page[-1].announcement_id) if more and page else None


def permalink(announcement_id: str, now: datetime) -> ChangelogEntry:
    """One live public post; NotFound for anything else (unknown, targeted, not yet or no
    longer shown), so the page reveals nothing about announcements that are not public."""
    post = store.get_post(announcement_id) if len(announcement_id) <= MAX_ID_LENGTH else None
    found = _entries([post]) if post is not None and post.public and is_live(post, now) else []
    if not found:
        raise NotFound(f"no public announcement with id {announcement_id!r}", code="announcement_not_found")
    return found[0]


def _entries(posts: list[FeedPost]) -> list[ChangelogEntry]:
    contents = contents_of([p.announcement_id for p in posts])
    entries = []
    for post in posts:
        announcement = contents.get(post.announcement_id)
        if announcement is None:
            continue
        rendered = _public_render(announcement.id, announcement.title, announcement.body)
        if rendered is not None:
            entries.append(_entry(post, announcement, *rendered))
    return entries


def _entry(post: FeedPost, announcement: Announcement, title: str, html: str) -> ChangelogEntry:
    return ChangelogEntry(
        announcement_id=post.announcement_id,
        title=title,
        html=html,
        labels=post.labels,
        image_url=announcement.image_url,
        cta=announcement.cta,
        published_at=post.published_at,
    )


@functools.lru_cache(maxsize=256)
def _public_render(announcement_id: str, title: str, body: str) -> tuple[str, str] | None:
    """(title, html) with no traits; None when the post cannot render without any (it is left
    out rather than shown half-rendered)."""
    from cohortcast.announcements.render import compile_announcement  # lazy: Jinja, Markdown, nh3

    try:
        return compile_announcement(title, body).render_post({})
    except Unprocessable as exc:
        logger.warning(
            "changelog post does not render without traits",
            extra={"id": announcement_id, "error": exc.message},
        )
        return None
