"""The public changelog: `GET /changelog` (HTML, ?label=&cursor=&limit=), `GET /changelog/{id}`
(the permalink page) and `GET /changelog.atom` (Atom 1.0, ?label=). No key: anyone may read it.

The HTML routes answer every error as an HTML page (a person reads them in a browser); the Atom
route answers in our JSON error shape (a feed reader or a script reads it). Query parameters are
parsed here rather than by Powertools' validation, whose 422 would be JSON on the HTML routes:
a bad `label`, `cursor` or `limit` is a 400 on every route. Successful answers may be cached by
anyone for a minute; errors are not cached.
"""

import re
from collections.abc import Callable

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from cohortcast.clock import isoformat, utcnow
from cohortcast.errors import BadRequest, CohortcastError
from cohortcast.feed import changelog
from cohortcast.feed.changelog_page import (
    ChangelogUrls,
    atom_feed,
    render_changelog_page,
    render_error_page,
    render_permalink_page,
    site_name,
)
from cohortcast.observability import logger
from cohortcast.workspace.service import get_workspace_settings

router = Router()

PAGE_SIZE = 20
MAX_PAGE_SIZE = 50
ATOM_ENTRIES = 20
MAX_CURSOR_LENGTH = 512
_HTML = "text/html; charset=utf-8"
_ATOM = "application/atom+xml; charset=utf-8"
_CACHED = {"Cache-Control": "public, max-age=60", "X-Content-Type-Options": "nosniff"}
_NOT_CACHED = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}(:\d{1,5})?$")
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})


def _urls() -> ChangelogUrls:
    """Absolute URLs: the workspace's `public_base_url` when set, else the host this request
    came to (https, but http for 127.0.0.1/localhost: the local stack)."""
    configured = get_workspace_settings().public_base_url
    if configured:
        return ChangelogUrls(configured)
    event = router.current_event
    host = event.get_header_value("host") or ""
    if not _HOST.match(host):
        host = event.request_context.domain_name or "localhost"
    scheme = "http" if host.split(":")[0] in _LOCAL_HOSTS else "https"
    return ChangelogUrls(f"{scheme}://{host}")


def _site() -> str:
    return site_name(get_workspace_settings().sender)


def _query(name: str, max_length: int = 64) -> str | None:
    value = (router.current_event.query_string_parameters or {}).get(name) or None
    if value is not None and len(value) > max_length:
        raise BadRequest(
            f"{name} is longer than {max_length} characters", {"in": "query", "pointer": f"/{name}"}
        )
    return value


def _limit() -> int:
    given = _query("limit", 4)
    if given is None:
        return PAGE_SIZE
    if not given.isdigit() or not 1 <= int(given) <= MAX_PAGE_SIZE:
        raise BadRequest(f"limit must be 1 to {MAX_PAGE_SIZE}", {"in": "query", "pointer": "/limit"})
    return int(given)


def _html_page(render: Callable[[ChangelogUrls], str]) -> Response:
    """The page `render` makes, or the error it raised as an HTML page with its status."""
    urls = _urls()
    try:
        return Response(status_code=200, content_type=_HTML, body=render(urls), headers=_CACHED)
    except CohortcastError as exc:
        status, message = exc.status, exc.message
    except Exception:
        logger.exception("unhandled error")
        status, message = 500, "Something went wrong on our side. Please try again later."
    page = render_error_page(site=_site(), urls=urls, status=status, message=message)
    return Response(status_code=status, content_type=_HTML, body=page, headers=_NOT_CACHED)


@router.get("/changelog", include_in_schema=False)
def changelog_list():  # no return annotation: Powertools would try to model Response
    def render(urls: ChangelogUrls) -> str:
        label, cursor, limit = _query("label"), _query("cursor", MAX_CURSOR_LENGTH), _limit()
        entries, next_cursor = changelog.changelog_page(label, limit, cursor, utcnow())
        page_limit = None if limit == PAGE_SIZE else limit
        return render_changelog_page(
            site=_site(),
            urls=urls,
            labels=get_workspace_settings().labels,
            entries=entries,
            label=label,
            next_url=urls.page(label, next_cursor, page_limit) if next_cursor else None,
            older=cursor is not None,
        )

    return _html_page(render)


@router.get("/changelog.atom", include_in_schema=False)
def changelog_atom():
    label = _query("label")
    now = utcnow()
    entries, _ = changelog.changelog_page(label, ATOM_ENTRIES, None, now)
    body = atom_feed(site=_site(), urls=_urls(), entries=entries, label=label, updated=isoformat(now))
    return Response(status_code=200, content_type=_ATOM, body=body, headers=_CACHED)


@router.get("/changelog/<announcement_id>", include_in_schema=False)
def changelog_permalink(announcement_id: str):
    def render(urls: ChangelogUrls) -> str:
        post = changelog.permalink(announcement_id, utcnow())
        return render_permalink_page(
            site=_site(), urls=urls, labels=get_workspace_settings().labels, post=post
        )

    return _html_page(render)
