"""The changelog's pure renderers: the Atom document, its URLs, the site name, the HTML page."""

import xml.etree.ElementTree as ET

from cohortcast.announcements.models import CallToAction
from cohortcast.feed.changelog import ChangelogEntry
from cohortcast.feed.changelog_page import ChangelogUrls, atom_feed, render_changelog_page, site_name

ATOM = "{http://www.w3.org/2005/Atom}"
URLS = ChangelogUrls("https://news.acme.test")


def entry(announcement_id: str, published_at: str, **fields) -> ChangelogEntry:
    values = {
        "title": "A post",
        "html": "<p>Body</p>",
        "labels": (),
        "image_url": None,
        "cta": None,
        **fields,
    }
    return ChangelogEntry(announcement_id=announcement_id, published_at=published_at, **values)


def test_atom_entries_keep_their_order_and_the_feed_is_as_new_as_its_newest_entry():
    entries = [
        entry("ann_2", "2026-11-20T10:00:00.000Z", title="Tom & Jerry <3", labels=("New", "R&D")),
        entry(
            "ann_1",
            "2026-11-22T08:00:00.000Z",
            html='<p>a <a href="https://x.test/?a=1&amp;b=2">link</a></p>',
        ),
    ]

    feed = ET.fromstring(atom_feed(site="Acme", urls=URLS, entries=entries, label="New", updated="ignored"))

    assert feed.findtext(f"{ATOM}updated") == "2026-11-22T08:00:00.000Z"
    assert feed.findtext(f"{ATOM}title") == "Acme changelog: New"
    assert feed.findtext(f"{ATOM}id") == "https://news.acme.test/changelog.atom?label=New"
    first, second = feed.findall(f"{ATOM}entry")
    assert first.findtext(f"{ATOM}title") == "Tom & Jerry <3"
    assert [c.get("term") for c in first.findall(f"{ATOM}category")] == ["New", "R&D"]
    assert second.findtext(f"{ATOM}id") == "https://news.acme.test/changelog/ann_1"
    assert second.findtext(f"{ATOM}content") == '<p>a <a href="https://x.test/?a=1&amp;b=2">link</a></p>'


def test_an_empty_atom_feed_is_still_valid_and_characters_xml_cannot_carry_are_dropped():
    empty = ET.fromstring(
        atom_feed(site="Acme", urls=URLS, entries=[], label=None, updated="2026-11-24T09:00:00.000Z")
    )
    assert empty.findtext(f"{ATOM}updated") == "2026-11-24T09:00:00.000Z"
    assert empty.findtext(f"{ATOM}author/{ATOM}name") == "Acme"
    assert empty.findall(f"{ATOM}entry") == []

    odd = atom_feed(
        site="Acme",
        urls=URLS,
        entries=[entry("ann_1", "2026-11-22T08:00:00.000Z", title="bell\x07")],
        label=None,
        updated="x",
    )
    assert ET.fromstring(odd).findtext(f"{ATOM}entry/{ATOM}title") == "bell"


def test_urls_encode_their_query_and_the_site_is_the_senders_display_name():
    assert (
        URLS.page("Big & small", "abc=", 5)
        == "https://news.acme.test/changelog?label=Big+%26+small&cursor=abc%3D&limit=5"
    )
    assert URLS.page() == "https://news.acme.test/changelog"
    assert URLS.atom("Fix") == "https://news.acme.test/changelog.atom?label=Fix"
    assert site_name("Acme <news@acme.test>") == "Acme"
    assert site_name("news@acme.test") == "acme.test"


def test_a_label_the_workspace_no_longer_has_shows_as_text_not_as_a_filter_link():
    post = entry(
        "ann_1",
        "2026-11-22T08:00:00.000Z",
        labels=("New", "Retired"),
        cta=CallToAction(label="Open", url="https://app.acme.test"),
    )

    html = render_changelog_page(
        site="Acme", urls=URLS, labels=("New",), entries=[post], label=None, next_url=None, older=False
    )

    assert '<a class="label" href="https://news.acme.test/changelog?label=New">New</a>' in html
    assert '<span class="label">Retired</span>' in html
    assert '<a class="cta" href="https://app.acme.test">Open</a>' in html
    assert '<time datetime="2026-11-22T08:00:00.000Z">22 November 2026</time>' in html
    assert 'rel="next"' not in html
