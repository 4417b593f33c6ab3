"""The public changelog over its real routes: what is listed (public and live only), paging,
labels, the Atom feed, permalinks, escaping, URLs and the error answers."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from cohortcast.announcements.publish import run_page
from cohortcast.clock import isoformat
from cohortcast.messages import PageTask
from tests.component.announcements.conftest import NOW, api_event

ATOM = "{http://www.w3.org/2005/Atom}"
BASE = "https://api.example.com"  # the Host of api_event


class Page(HTMLParser):
    """What a reader of a changelog page gets: posts (id, title, labels, links), the label
    filter, the "Older" link, and all visible text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.posts: list[dict[str, Any]] = []
        self.filters: dict[str, str] = {}  # label → href
        self.current_filter: str | None = None
        self.older: str | None = None
        self.text: list[str] = []
        self._open: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self._open.append((tag, attributes))
        if tag == "article":
            self.posts.append({"id": attributes["id"], "title": "", "labels": [], "images": [], "links": []})
        elif tag == "img" and self.posts:
            self.posts[-1]["images"].append(attributes["src"])
        elif tag == "a" and attributes.get("rel") == "next":
            self.older = attributes["href"]
        elif tag == "a" and self.posts and self._inside("article"):
            self.posts[-1]["links"].append(attributes["href"])
        if tag == "img":
            self._open.pop()  # a void element

    def handle_endtag(self, tag: str) -> None:
        while self._open and self._open.pop()[0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if not self._open or not data.strip():
            return
        tag, attributes = self._open[-1]
        if self._inside("h2") and self.posts and self._inside("article"):
            self.posts[-1]["title"] += data
        elif "label" in (attributes.get("class") or "") and self._inside("article"):
            self.posts[-1]["labels"].append(data)
        elif tag == "a" and self._inside("nav") and "label" in (attributes.get("class") or ""):
            self.filters[data] = attributes["href"] or ""
            if attributes.get("aria-current") == "page":
                self.current_filter = data

    def _inside(self, tag: str) -> bool:
        return any(open_tag == tag for open_tag, _ in self._open)

    @property
    def ids(self) -> list[str]:
        return [post["id"] for post in self.posts]


@pytest.fixture
def get(aws, lambda_context):
    """get("/changelog", "label=New") → (status, body, headers) through the feed function,
    called the way API Gateway calls it (decoded query parameters, no authorizer)."""
    from functions.feed import app as feed_app

    def call(path: str, query: str = "", *, host: str | None = None) -> tuple[int, str, dict[str, str]]:
        event = api_event("GET", path, headers={"host": host} if host else None)
        event["requestContext"].pop("authorizer")
        if host:
            event["requestContext"]["domainName"] = host
        event["rawQueryString"] = query
        event["queryStringParameters"] = dict(parse_qsl(query)) if query else None
        response = feed_app.lambda_handler(event, lambda_context)
        return response["statusCode"], response["body"], response.get("headers") or {}

    return call


def follow(get, url: str) -> tuple[int, str, dict[str, str]]:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == BASE
    return get(parts.path, parts.query)


def publish_later(api, body: dict[str, Any], send_at, *, run_at=None) -> str:
    """A scheduled in-app announcement; `run_at`: its schedule fires then (page 0 runs)."""
    status, created = api(
        "POST",
        "/v1/announcements",
        {
            "body": "Hello",
            "channels": ["in_app"],
            "audience": {"everyone": True},
            "send_at": send_at.isoformat(),
            **body,
        },
    )
    assert status == 201, created
    if run_at is not None:
        run_page(PageTask(v=1, announcement_id=created["id"], page=0, cursor=None), run_at)
    return created["id"]


def test_only_posts_for_everyone_that_are_live_now_are_listed_newest_first(
    get, publish, api, segments, profiles, clock
):
    profiles({"ada": {}})
    segments("seg_staff", ["ada"])
    first = publish(
        {
            "title": "Dark mode",
            "body": "Now **darker**.",
            "labels": ["New"],
            "audience": {"everyone": True},
            "image_url": "https://cdn.example.com/dark.png",
            "cta": {"label": "Try it", "url": "https://app.example.com/settings"},
        }
    )
    clock.move_to(NOW + timedelta(minutes=1))
    publish({"title": "Staff only", "audience": {"segments": ["seg_staff"]}})
    publish({"title": "Not for staff", "audience": {"everyone": True, "exclude_segments": ["seg_staff"]}})
    clock.move_to(NOW + timedelta(minutes=2))
    short = publish(
        {
            "title": "Maintenance tonight",
            "audience": {"everyone": True},
            "visible_until": isoformat(NOW + timedelta(hours=1)),
        }
    )
    clock.move_to(NOW + timedelta(minutes=3))
    lasting = publish(
        {
            "title": "Faster search",
            "audience": {"everyone": True},
            "visible_until": isoformat(NOW + timedelta(days=9)),
        }
    )
    status, created = api(
        "POST", "/v1/announcements", {"title": "Email only", "body": "x", "audience": {"everyone": True}}
    )
    assert status == 201, created
    publish_later(api, {"title": "Scheduled"}, NOW + timedelta(days=2))  # its schedule has not fired
    clock.move_to(NOW + timedelta(minutes=4))
    # page 0 runs at its send_at, so the post is stored with a published_at ahead of the reader's now
    later = publish_later(
        api, {"title": "Later today"}, NOW + timedelta(hours=3), run_at=NOW + timedelta(hours=3)
    )

    status, body, headers = get("/changelog")
    assert status == 200, body
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "public, max-age=60"
    assert Page(body).ids == [lasting, short, first]  # "Later today" is not out yet

    clock.move_to(NOW + timedelta(hours=4))  # "Maintenance tonight" is over, "Later today" out
    page = Page(get("/changelog")[1])
    assert page.ids == [later, lasting, first]
    dark = page.posts[-1]
    assert dark["title"] == "Dark mode" and dark["labels"] == ["New"]
    assert dark["images"] == ["https://cdn.example.com/dark.png"]
    assert dark["links"] == [
        f"{BASE}/changelog/{first}",
        f"{BASE}/changelog?label=New",
        "https://app.example.com/settings",
    ]
    assert "<strong" in get("/changelog")[1] and "Try it" in page.text


def test_paging_follows_the_older_link_until_the_last_post(get, publish, clock):
    ids = []
    for minute in range(5):
        clock.move_to(NOW + timedelta(minutes=minute))
        ids.append(publish({"title": f"Post {minute}", "audience": {"everyone": True}}))

    seen, url, pages = [], f"{BASE}/changelog?limit=2", 0
    while url:
        status, body, _ = follow(get, url)
        assert status == 200, body
        page = Page(body)
        seen += page.ids
        url, pages = page.older, pages + 1
        assert url is None or "limit=2" in url  # the page size is kept

    assert seen == list(reversed(ids)) and pages == 3


def test_a_label_filters_the_list_and_an_unknown_label_or_cursor_is_a_400_page(get, publish, clock):
    new = publish({"title": "New thing", "labels": ["New"], "audience": {"everyone": True}})
    clock.move_to(NOW + timedelta(minutes=1))
    both = publish({"title": "Fixed and new", "labels": ["Fix", "New"], "audience": {"everyone": True}})
    clock.move_to(NOW + timedelta(minutes=2))
    publish({"title": "Just a fix", "labels": ["Fix"], "audience": {"everyone": True}})

    page = Page(get("/changelog", "label=New")[1])
    assert page.ids == [both, new]
    assert page.current_filter == "New"
    assert list(page.filters) == ["All", "New", "Improvement", "Fix", "Announcement"]
    assert page.filters["Improvement"] == f"{BASE}/changelog?label=Improvement"

    for query in ("label=Nope", "cursor=%%%not-ours", "cursor=bm90IGpzb24", "limit=0", "limit=x"):
        status, body, headers = get("/changelog", query)
        assert status == 400, query
        assert (
            headers["Content-Type"] == "text/html; charset=utf-8" and headers["Cache-Control"] == "no-store"
        )
        assert "Bad request" in body
    assert "the labels are New, Improvement, Fix, Announcement" in get("/changelog", "label=Nope")[1]


def test_the_atom_feed_lists_the_public_posts_with_absolute_permalinks(get, publish, api, segments, clock):
    segments("seg_a", [])
    publish({"title": "Targeted", "audience": {"segments": ["seg_a"]}})
    older = publish({"title": "Older", "labels": ["Fix"], "audience": {"everyone": True}})
    clock.move_to(NOW + timedelta(minutes=5))
    newer = publish(
        {
            "title": "Newer & better",
            "body": "A *big* one.",
            "labels": ["New", "Improvement"],
            "audience": {"everyone": True},
        }
    )

    status, body, headers = get("/changelog.atom")

    assert status == 200, body
    assert headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert headers["Cache-Control"] == "public, max-age=60"
    assert body.startswith('<?xml version="1.0" encoding="utf-8"?>')
    feed = ET.fromstring(body)
    assert feed.tag == f"{ATOM}feed"
    assert feed.findtext(f"{ATOM}id") == f"{BASE}/changelog.atom"
    assert feed.findtext(f"{ATOM}title") == "cohortcast changelog"
    links = {link.get("rel"): link.get("href") for link in feed.findall(f"{ATOM}link")}
    assert links == {"self": f"{BASE}/changelog.atom", "alternate": f"{BASE}/changelog"}
    assert feed.findtext(f"{ATOM}author/{ATOM}name") == "cohortcast"
    entries = feed.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}id") for e in entries] == [
        f"{BASE}/changelog/{newer}",
        f"{BASE}/changelog/{older}",
    ]
    first = entries[0]
    published = isoformat(NOW + timedelta(minutes=5))
    assert feed.findtext(f"{ATOM}updated") == published
    assert first.findtext(f"{ATOM}title") == "Newer & better"
    assert first.findtext(f"{ATOM}published") == first.findtext(f"{ATOM}updated") == published
    assert [c.get("term") for c in first.findall(f"{ATOM}category")] == ["New", "Improvement"]
    content = first.find(f"{ATOM}content")
    assert content is not None and content.get("type") == "html"
    assert "<em" in content.text and "big</em>" in content.text
    assert first.find(f"{ATOM}link").get("href") == f"{BASE}/changelog/{newer}"

    fixes = ET.fromstring(get("/changelog.atom", "label=Fix")[1])
    assert [e.findtext(f"{ATOM}title") for e in fixes.findall(f"{ATOM}entry")] == ["Older"]
    assert fixes.findtext(f"{ATOM}id") == f"{BASE}/changelog.atom?label=Fix"

    status, body, headers = get("/changelog.atom", "label=Nope")
    assert status == 400 and headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "unknown_label"


def test_urls_come_from_public_base_url_when_set_and_local_hosts_are_http(get, publish, api):
    post = publish({"title": "Hello", "audience": {"everyone": True}})

    local = Page(get("/changelog", host="127.0.0.1:3000")[1])
    assert local.posts[0]["links"][0] == f"http://127.0.0.1:3000/changelog/{post}"

    status, _ = api(
        "PUT",
        "/v1/settings",
        {"public_base_url": "https://updates.acme.test/", "sender": "Acme <news@acme.test>"},
    )
    assert status == 200
    feed = ET.fromstring(get("/changelog.atom", host="127.0.0.1:3000")[1])
    assert feed.findtext(f"{ATOM}entry/{ATOM}id") == f"https://updates.acme.test/changelog/{post}"
    assert feed.findtext(f"{ATOM}title") == "Acme changelog"


def test_a_permalink_shows_a_public_post_and_a_404_page_for_anything_else(get, publish, segments, clock):
    segments("seg_a", [])
    public = publish(
        {"title": "Public", "body": "Read [more](https://example.com/more).", "audience": {"everyone": True}}
    )
    targeted = publish({"title": "Targeted", "audience": {"segments": ["seg_a"]}})
    excluded = publish({"title": "Excluded", "audience": {"everyone": True, "exclude_segments": ["seg_a"]}})
    ending = publish(
        {
            "title": "Ending",
            "audience": {"everyone": True},
            "visible_until": isoformat(NOW + timedelta(hours=1)),
        }
    )

    status, body, headers = get(f"/changelog/{public}")
    assert status == 200 and headers["Cache-Control"] == "public, max-age=60"
    page = Page(body)
    assert page.ids == [public] and page.posts[0]["title"] == "Public"
    assert "https://example.com/more" in page.posts[0]["links"]
    assert get(f"/changelog/{ending}")[0] == 200

    clock.move_to(NOW + timedelta(hours=2))
    for announcement_id in ("ann_nope", targeted, excluded, ending, "x" * 300):
        status, body, headers = get(f"/changelog/{announcement_id}")
        assert status == 404, announcement_id
        assert (
            headers["Content-Type"] == "text/html; charset=utf-8" and headers["Cache-Control"] == "no-store"
        )
        assert "Not found" in body and "Targeted" not in body


def test_titles_and_bodies_are_escaped_and_personalisation_shows_its_defaults(get, publish):
    hostile = publish(
        {
            "title": "<script>alert(1)</script> & co",
            "body": 'Hi {{ user.first_name | default("there") }} <script>alert(2)</script>'
            "<img src=x onerror=alert(3)>",
            "audience": {"everyone": True},
        }
    )

    for body in (get("/changelog")[1], get(f"/changelog/{hostile}")[1]):
        assert "<script>" not in body and "onerror" not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in body
        assert "Hi there" in body
    entry = ET.fromstring(get("/changelog.atom")[1]).find(f"{ATOM}entry")
    assert entry.findtext(f"{ATOM}title") == "<script>alert(1)</script> & co"
    assert "<script>" not in entry.findtext(f"{ATOM}content")


def test_a_scheduled_post_is_listed_where_it_was_published_not_where_it_was_created(get, publish, api, clock):
    scheduled = publish_later(
        api, {"title": "Planned ahead"}, NOW + timedelta(hours=2), run_at=NOW + timedelta(hours=2)
    )
    clock.move_to(NOW + timedelta(minutes=30))
    immediate = publish({"title": "Right away", "audience": {"everyone": True}})
    clock.move_to(NOW + timedelta(hours=3))

    assert Page(get("/changelog")[1]).ids == [scheduled, immediate]
    one_per_page = Page(get("/changelog", "limit=1")[1])
    assert one_per_page.ids == [scheduled] and one_per_page.older is not None
    last = Page(follow(get, one_per_page.older)[1])
    assert last.ids == [immediate] and last.older is None  # no link to an empty page
