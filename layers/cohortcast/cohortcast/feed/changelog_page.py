"""The public changelog as people and feed readers see it: server-rendered HTML pages (no
JavaScript) and an Atom 1.0 feed. Pure: entries and URLs in, text out.
"""

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from email.utils import parseaddr
from functools import cache
from urllib.parse import urlencode

from jinja2 import DictLoader, Environment, Template
from markupsafe import Markup

from cohortcast.clock import parse_timestamp
from cohortcast.feed.changelog import ChangelogEntry

ATOM_NAMESPACE = "http://www.w3.org/2005/Atom"
# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class ChangelogUrls:
    """Absolute URLs under `base` (scheme://host, without a trailing slash)."""

    base: str

    def page(self, label: str | None = None, cursor: str | None = None, limit: int | None = None) -> str:
        query = {
            name: value for name, value in (("label", label), ("cursor", cursor), ("limit", limit)) if value
        }
        return f"{self.base}/changelog" + (f"?{urlencode(query)}" if query else "")

    def atom(self, label: str | None = None) -> str:
        return f"{self.base}/changelog.atom" + (f"?{urlencode({'label': label})}" if label else "")

    def permalink(self, announcement_id: str) -> str:
        return f"{self.base}/changelog/{announcement_id}"


def site_name(sender: str) -> str:
    """Whose changelog it is: the display name of the workspace's sender ("Acme <news@acme.test>")."""
    name, address = parseaddr(sender)
    return name or address.rpartition("@")[2] or "Changelog"


# -- HTML ------------------------------------------------------------------------------------------

_SHELL = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; style-src 'unsafe-inline'; img-src https: http:">
<title>{% block title %}{{ site }} changelog{% endblock %}</title>
{% if atom_url %}
<link rel="alternate" type="application/atom+xml" title="{{ site }} changelog" href="{{ atom_url }}">
{% endif %}
<style>
body{margin:0;background:#f3f4f6;color:#111827;font:16px/1.6 -apple-system,BlinkMacSystemFont,
"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:720px;margin:32px auto;padding:0 16px}
header h1{font-size:28px;margin:0 0 4px}
header h1 a{color:inherit;text-decoration:none}
nav.labels{display:flex;flex-wrap:wrap;gap:8px;margin:16px 0 24px}
.label{display:inline-block;border:1px solid #d1d5db;border-radius:999px;padding:1px 10px;font-size:13px;
color:#374151;background:#fff;text-decoration:none}
a.label[aria-current]{background:#111827;color:#fff;border-color:#111827}
article{background:#fff;border-radius:8px;padding:24px 28px;margin:0 0 20px}
article h2{font-size:22px;margin:0 0 4px;line-height:1.3}
article h2 a{color:inherit;text-decoration:none}
.meta{display:flex;flex-wrap:wrap;align-items:center;gap:8px;color:#6b7280;font-size:14px;margin:0 0 16px}
.hero{display:block;max-width:100%;height:auto;border-radius:6px;margin:0 0 16px}
.cta{display:inline-block;background:#2563eb;color:#fff;border-radius:6px;padding:8px 16px;
text-decoration:none}
a:focus{outline:3px solid #93c5fd;outline-offset:2px}
.pager{display:flex;justify-content:space-between;margin:8px 0 32px}
.muted{color:#6b7280}
.error{background:#fef2f2;border:1px solid #fecaca;color:#991b1b;padding:10px 14px;border-radius:6px}
</style>
</head>
<body>
<main>
<header>
<h1><a href="{{ urls.page() }}">{{ site }} changelog</a></h1>
{% if atom_url %}<p class="muted"><a href="{{ atom_url }}">Atom feed</a></p>{% endif %}
</header>
{% block content %}{% endblock %}
</main>
</body>
</html>
"""

_ENTRY = """\
{% macro entry(post, heading_link) %}
<article id="{{ post.announcement_id }}">
<h2>{% if heading_link %}<a href="{{ urls.permalink(post.announcement_id) }}">{{ post.title }}</a>\
{% else %}{{ post.title }}{% endif %}</h2>
<p class="meta"><time datetime="{{ post.published_at }}">{{ post.published_at | day }}</time>
{% for label in post.labels %}
{% if label in labels %}<a class="label" href="{{ urls.page(label) }}">{{ label }}</a>\
{% else %}<span class="label">{{ label }}</span>{% endif %}
{% endfor %}</p>
{% if post.image_url %}<img class="hero" src="{{ post.image_url }}" alt="">{% endif %}
<div class="body">{{ post.html | sanitised }}</div>
{% if post.cta %}<p><a class="cta" href="{{ post.cta.url }}">{{ post.cta.label }}</a></p>{% endif %}
</article>
{% endmacro %}
"""

_LIST = """\
{% extends "shell" %}
{% from "entry" import entry with context %}
{% block title %}{{ site }} changelog{% if label %}: {{ label }}{% endif %}{% endblock %}
{% block content %}
<nav class="labels" aria-label="Labels">
<a class="label" href="{{ urls.page() }}"{% if not label %} aria-current="page"{% endif %}>All</a>
{% for name in labels %}
<a class="label" href="{{ urls.page(name) }}"
{%- if name == label %} aria-current="page"{% endif %}>{{ name }}</a>
{% endfor %}
</nav>
{% for post in entries %}{{ entry(post, true) }}{% else %}
<p class="muted">{% if older %}No older posts.{% else %}Nothing here yet.{% endif %}</p>
{% endfor %}
<nav class="pager" aria-label="Pages">
{% if older %}<a href="{{ urls.page(label) }}">Newest</a>{% else %}<span></span>{% endif %}
{% if next_url %}<a rel="next" href="{{ next_url }}">Older posts</a>{% endif %}
</nav>
{% endblock %}
"""

_PERMALINK = """\
{% extends "shell" %}
{% from "entry" import entry with context %}
{% block title %}{{ post.title }} · {{ site }} changelog{% endblock %}
{% block content %}
{{ entry(post, false) }}
<nav class="pager"><a href="{{ urls.page() }}">All posts</a></nav>
{% endblock %}
"""

_ERROR = """\
{% extends "shell" %}
{% block title %}{{ heading }} · {{ site }} changelog{% endblock %}
{% block content %}
<h2>{{ heading }}</h2>
<p class="error" role="alert">{{ message }}</p>
<p><a href="{{ urls.page() }}">See all posts</a></p>
{% endblock %}
"""


def render_changelog_page(
    *,
    site: str,
    urls: ChangelogUrls,
    labels: tuple[str, ...],
    entries: list[ChangelogEntry],
    label: str | None,
    next_url: str | None,
    older: bool,
) -> str:
    """One page of posts; `labels` are the workspace's (the filter links); `older`: not the first page."""
    return _template("list").render(
        site=site,
        urls=urls,
        atom_url=urls.atom(label),
        labels=labels,
        entries=entries,
        label=label,
        next_url=next_url,
        older=older,
    )


def render_permalink_page(
    *, site: str, urls: ChangelogUrls, labels: tuple[str, ...], post: ChangelogEntry
) -> str:
    return _template("permalink").render(site=site, urls=urls, atom_url=urls.atom(), labels=labels, post=post)


def render_error_page(*, site: str, urls: ChangelogUrls, status: int, message: str) -> str:
    heading = {404: "Not found", 400: "Bad request"}.get(status, "Something went wrong")
    return _template("error").render(site=site, urls=urls, atom_url=None, heading=heading, message=message)


def _day(timestamp: str) -> str:
    moment = parse_timestamp(timestamp)
    return f"{moment.day} {moment:%B %Y}"


@cache
def _template(name: str) -> Template:
    loader = DictLoader(
        {"shell": _SHELL, "entry": _ENTRY, "list": _LIST, "permalink": _PERMALINK, "error": _ERROR}
    )
    env = Environment(loader=loader, autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["day"] = _day
    env.filters["sanitised"] = Markup  # the body went through the email's sanitiser (nh3)
    return env.get_template(name)


# -- Atom --------------------------------------------------------------------------------------------


def atom_feed(
    *, site: str, urls: ChangelogUrls, entries: list[ChangelogEntry], label: str | None, updated: str
) -> str:
    """An Atom 1.0 document (RFC 4287); `updated` is used when there are no entries (else the newest)."""
    feed = ET.Element("feed", xmlns=ATOM_NAMESPACE)
    _text(feed, "id", urls.atom(label))
    _text(feed, "title", f"{site} changelog" + (f": {label}" if label else ""))
    _text(feed, "updated", max((e.published_at for e in entries), default=updated))
    ET.SubElement(feed, "link", rel="self", type="application/atom+xml", href=urls.atom(label))
    ET.SubElement(feed, "link", rel="alternate", type="text/html", href=urls.page(label))
    _text(ET.SubElement(feed, "author"), "name", site)
    for entry in entries:
        item = ET.SubElement(feed, "entry")
        _text(item, "id", urls.permalink(entry.announcement_id))
        _text(item, "title", entry.title)
        _text(item, "published", entry.published_at)
        _text(item, "updated", entry.published_at)  # published content never changes
        ET.SubElement(
            item, "link", rel="alternate", type="text/html", href=urls.permalink(entry.announcement_id)
        )
        for name in entry.labels:
            ET.SubElement(item, "category", term=_xml_safe(name))
        _text(item, "content", entry.html, type="html")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="unicode") + "\n"


def _text(parent: ET.Element, tag: str, text: str, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    element.text = _xml_safe(text)
    return element


def _xml_safe(text: str) -> str:
    return _NOT_XML.sub("", text)
