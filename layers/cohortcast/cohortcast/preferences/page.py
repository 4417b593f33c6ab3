"""The email preferences page behind unsubscribe links: plain HTML forms, no JavaScript.

Also parses what the page posts back, and recognises the RFC 8058 one-click POST that mail
clients send to the List-Unsubscribe URL.
"""

from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from functools import cache
from urllib.parse import parse_qs

from jinja2 import DictLoader, Environment, Template

from cohortcast.errors import BadRequest

_MAX_FORM_FIELDS = 500  # a page offers a handful of topics; refuse pathological bodies

_SHELL = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="robots" content="noindex">
<title>{% block title %}Email preferences{% endblock %}</title>
<style>
body{margin:0;background:#f3f4f6;color:#111827;font:16px/1.5 -apple-system,BlinkMacSystemFont,
"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:560px;margin:32px auto;padding:24px 28px;background:#fff;border-radius:8px}
h1{font-size:24px;margin:0 0 8px}
fieldset{border:1px solid #e5e7eb;border-radius:6px;margin:16px 0;padding:12px 16px}
legend{font-weight:600;padding:0 4px}
.choice{display:flex;align-items:center;gap:10px;padding:6px 0}
.choice input{width:20px;height:20px;margin:0}
.status{background:#ecfdf5;border:1px solid #a7f3d0;color:#065f46;padding:10px 14px;border-radius:6px}
.error{background:#fef2f2;border:1px solid #fecaca;color:#991b1b;padding:10px 14px;border-radius:6px}
button{font:inherit;background:#2563eb;color:#fff;border:0;border-radius:6px;padding:10px 18px;cursor:pointer}
button:focus,input:focus{outline:3px solid #93c5fd;outline-offset:2px}
.muted{color:#6b7280;font-size:14px}
</style>
</head>
<body>
<main>
{% block content %}{% endblock %}
</main>
</body>
</html>
"""

_PREFERENCES = """\
{% extends "shell" %}
{% block content %}
<h1>Email preferences</h1>
<p class="muted">For {{ user_label }}</p>
{% if message %}<p class="status" role="status">{{ message }}</p>{% endif %}
<form method="post" action="{{ form_action }}">
{% if topics %}
<fieldset>
<legend>Send me emails about</legend>
{% for choice in topics %}
<div class="choice">
<input type="checkbox" id="topic-{{ loop.index }}" name="topic" value="{{ choice.topic }}"
{%- if choice.subscribed %} checked{% endif %}>
<label for="topic-{{ loop.index }}">{{ choice.label }}</label>
<input type="hidden" name="offered" value="{{ choice.topic }}">
</div>
{% endfor %}
</fieldset>
{% endif %}
<fieldset>
<legend>Everything</legend>
<div class="choice">
<input type="checkbox" id="unsubscribe-all" name="unsubscribe_all" value="1"
{%- if unsubscribed_all %} checked{% endif %}>
<label for="unsubscribe-all">Unsubscribe from all emails</label>
</div>
</fieldset>
<button type="submit">Save preferences</button>
</form>
{% endblock %}
"""

_ERROR = """\
{% extends "shell" %}
{% block title %}Email preferences: error{% endblock %}
{% block content %}
<h1>We could not open your preferences</h1>
<p class="error" role="alert">{{ message }}</p>
<p class="muted">The link may be incomplete. Try the link from a more recent email.</p>
{% endblock %}
"""


@dataclass(frozen=True, slots=True)
class TopicChoice:
    topic: str
    label: str
    subscribed: bool


@dataclass(frozen=True, slots=True)
class PreferencesChange:
    """What the user asked for. Topics shown but left unchecked are in `unsubscribed`."""

    subscribed: frozenset[str]
    unsubscribed: frozenset[str]
    unsubscribe_all: bool


def render_preferences_page(
    *,
    user_label: str,
    topics: list[TopicChoice],
    unsubscribed_all: bool,
    form_action: str,
    message: str | None,
) -> str:
    return _template("preferences").render(
        user_label=user_label,
        topics=topics,
        unsubscribed_all=unsubscribed_all,
        form_action=form_action,
        message=message,
    )


def render_error_page(message: str) -> str:
    return _template("error").render(message=message)


def parse_preferences_form(body: str) -> PreferencesChange:
    """Parse the page's application/x-www-form-urlencoded POST."""
    fields = _parse_urlencoded(body)
    # Unchecked boxes are not sent, so "offered" lists what the user saw on the page.
    checked = frozenset(fields.get("topic", []))
    offered = frozenset(fields.get("offered", []))
    return PreferencesChange(
        subscribed=checked,
        unsubscribed=offered - checked,
        unsubscribe_all=fields.get("unsubscribe_all", [""])[-1] == "1",
    )


def is_one_click_unsubscribe(body: str, content_type: str | None = None) -> bool:
    """True for the RFC 8058 POST body `List-Unsubscribe=One-Click`.

    RFC 8058 says mail clients SHOULD send multipart/form-data and MAY send
    application/x-www-form-urlencoded, so both are accepted.
    """
    if content_type and content_type.lower().startswith("multipart/form-data"):
        return _multipart_value(body, content_type, "List-Unsubscribe") == "One-Click"
    try:
        fields = _parse_urlencoded(body)
    except BadRequest:
        return False
    return fields.get("List-Unsubscribe") == ["One-Click"]


def _parse_urlencoded(body: str) -> dict[str, list[str]]:
    try:
        return parse_qs(body, max_num_fields=_MAX_FORM_FIELDS)
    except ValueError as exc:
        raise BadRequest("the form has too many fields") from exc


def _multipart_value(body: str, content_type: str, name: str) -> str | None:
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body.encode("utf-8", "surrogateescape"))
    for part in message.iter_parts() if message.is_multipart() else ():
        if part.get_param("name", header="content-disposition") == name:
            return str(part.get_content()).strip()
    return None


@cache
def _template(name: str) -> Template:
    loader = DictLoader({"shell": _SHELL, "preferences": _PREFERENCES, "error": _ERROR})
    return Environment(loader=loader, autoescape=True).get_template(name)
