"""Announcement rendering: Markdown + Jinja personalisation → subject, sanitized HTML and plain text.

Compile once per announcement (`compile_announcement`), render once per recipient
(`CompiledAnnouncement.render`). Markdown is converted at compile time with every Jinja
construct swapped for an inert placeholder, so trait values are substituted *after* Markdown
and can never become Markdown or HTML: the HTML path autoescapes them, then nh3 sanitizes.
"""

import html
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import nh3
from jinja2 import ChainableUndefined, Template, TemplateError, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markdown_it.tree import SyntaxTreeNode
from markupsafe import Markup

from cohortcast.errors import Unprocessable

# A Jinja construct as the default lexer sees it. Strings are matched whole so a "}}" inside
# a literal does not end the tag; raw blocks are kept in one piece so their content stays literal.
_JINJA_CONSTRUCT = re.compile(
    r"""
      \{%-?\s*raw\s*-?%\}.*?\{%-?\s*endraw\s*-?%\}
    | \{\{(?:[^}'"]|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"|\}(?!\}))*\}\}
    | \{%(?:[^%'"]|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"|%(?!\}))*%\}
    | \{\#.*?\#\}
    """,
    re.DOTALL | re.VERBOSE,
)

_ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "img", "li", "ol", "p", "pre", "s", "span", "strong", "sub", "sup", "table", "tbody",
    "td", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "abbr": {"title"},
    "ol": {"start"},
}
_CELL_ALIGN = {"align": {"left", "right", "center"}}
_URL_SCHEMES = {"http", "https", "mailto"}

_FONT = "font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif"
_MONO = "font-family:SFMono-Regular,Menlo,Consolas,'Liberation Mono',monospace"
# Email clients drop <style> blocks unpredictably, so every body element gets its style inline;
# nh3 sets these after stripping whatever style the source carried.
_INLINE_STYLES = {
    "p": "margin:0 0 16px;line-height:1.6",
    "h1": "margin:24px 0 12px;font-size:24px;line-height:1.3",
    "h2": "margin:24px 0 12px;font-size:20px;line-height:1.3",
    "h3": "margin:20px 0 8px;font-size:17px;line-height:1.3",
    "a": "color:#2563eb;text-decoration:underline",
    "img": "max-width:100%;height:auto;border:0",
    "ul": "margin:0 0 16px;padding-left:24px;line-height:1.6",
    "ol": "margin:0 0 16px;padding-left:24px;line-height:1.6",
    "blockquote": "margin:0 0 16px;padding:4px 16px;border-left:4px solid #d1d5db;color:#4b5563",
    "pre": f"margin:0 0 16px;padding:12px;background:#f3f4f6;border-radius:6px;overflow-x:auto;{_MONO}",
    "code": f"{_MONO};font-size:90%;background:#f3f4f6;padding:1px 4px;border-radius:4px",
    "table": "border-collapse:collapse;margin:0 0 16px;width:100%",
    "th": "border:1px solid #d1d5db;padding:6px 10px;background:#f9fafb",
    "td": "border:1px solid #d1d5db;padding:6px 10px",
    "hr": "border:0;border-top:1px solid #e5e7eb;margin:24px 0",
}

_LAYOUT = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ subject }}</title>
</head>
<body style="margin:0;padding:0;background:#f3f4f6">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f3f4f6">
<tr><td align="center" style="padding:24px 12px">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" \
style="max-width:600px;background:#ffffff;border-radius:8px;{{ font }};color:#111827;font-size:16px">
<tr><td style="padding:32px 32px 8px">
<h1 style="margin:0 0 16px;font-size:26px;line-height:1.25;color:#111827">{{ subject }}</h1>
{{ body }}
</td></tr>
<tr><td style="padding:16px 32px 32px;border-top:1px solid #e5e7eb;\
font-size:13px;line-height:1.5;color:#6b7280">
You are receiving this email because you are subscribed to these announcements.<br>
<a href="{{ unsubscribe_url }}" style="color:#6b7280;text-decoration:underline">Unsubscribe</a>
&nbsp;&middot;&nbsp;
<a href="{{ preferences_url }}" style="color:#6b7280;text-decoration:underline">Manage preferences</a>
</td></tr>
</table>
</td></tr>
</table>
</body>
</html>
"""

_TEXT_FOOTER = "\n\n--\nUnsubscribe: {unsubscribe_url}\nManage preferences: {preferences_url}\n"


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


@dataclass(frozen=True, slots=True)
class CompiledAnnouncement:
    """Templates parsed once; `render` only substitutes, sanitizes and wraps."""

    subject_template: Template
    html_template: Template
    text_template: Template

    def render(
        self,
        traits: Mapping[str, Any],
        *,
        unsubscribe_url: str,
        preferences_url: str,
        user_id: str | None = None,
    ) -> RenderedEmail:
        user = {**traits, "id": user_id} if user_id is not None else dict(traits)
        try:
            subject = " ".join(self.subject_template.render(user=user).split())
            body = nh3.clean(self.html_template.render(user=user), **_sanitizer_options())
            text = self.text_template.render(user=user)
        except (TemplateError, TypeError, ValueError, ArithmeticError) as exc:
            # Traits of an unexpected type (e.g. a string in arithmetic) fail this recipient only.
            raise Unprocessable(f"personalisation failed: {exc}", [{"pointer": "/body"}]) from exc
        page = _layout().render(
            subject=subject,
            body=Markup(body),  # already sanitized by nh3 above
            font=_FONT,
            unsubscribe_url=unsubscribe_url,
            preferences_url=preferences_url,
        )
        footer = _TEXT_FOOTER.format(unsubscribe_url=unsubscribe_url, preferences_url=preferences_url)
        return RenderedEmail(subject=subject, html=page, text=_tidy_text(text) + footer)


def validate_body(markdown_text: str, title: str) -> None:
    """Raise `Unprocessable` for an empty title/body or a Jinja syntax error (with its line)."""
    for pointer, source in (("/title", title), ("/body", markdown_text)):
        if not source.strip():
            raise Unprocessable(f"{pointer[1:]} must not be empty", [{"pointer": pointer}])
        _parse(_text_env(), source, pointer)


def compile_announcement(title: str, body_markdown: str) -> CompiledAnnouncement:
    validate_body(body_markdown, title)
    marked, constructs = _extract_jinja(body_markdown)
    md = _markdown()
    tokens = md.parse(marked)
    body_html = md.renderer.render(tokens, md.options, {})
    body_text = _markdown_to_text(SyntaxTreeNode(tokens))
    return CompiledAnnouncement(
        subject_template=_parse(_text_env(), title, "/title"),
        html_template=_parse(_html_env(), _restore(body_html, constructs, _escape_html_data), "/body"),
        text_template=_parse(_text_env(), _restore(body_text, constructs, _escape_text_data), "/body"),
    )


# --- Jinja -------------------------------------------------------------------------------------


class _LenientUndefined(ChainableUndefined):
    """A missing trait renders empty and absorbs operators: a missing variable never breaks a send."""

    __slots__ = ()

    def _absorb(self, *args: Any, **kwargs: Any) -> "_LenientUndefined":
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _absorb
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _absorb
    __pow__ = __rpow__ = __pos__ = __neg__ = __call__ = _absorb
    __lt__ = __le__ = __gt__ = __ge__ = _absorb  # type: ignore[assignment]

    def __int__(self) -> int:
        return 0

    def __float__(self) -> float:
        return 0.0


class _TraitsEnvironment(SandboxedEnvironment):
    """`user.items` must mean the trait "items", never the dict method."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, dict):
            return obj[attribute] if attribute in obj else self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


def _new_env(*, autoescape: bool) -> SandboxedEnvironment:
    env = _TraitsEnvironment(autoescape=autoescape, undefined=_LenientUndefined)
    # `safe` would let a trait value through unescaped, which is exactly what we prevent.
    del env.filters["safe"]
    return env


@cache
def _html_env() -> SandboxedEnvironment:
    return _new_env(autoescape=True)


@cache
def _text_env() -> SandboxedEnvironment:
    return _new_env(autoescape=False)


@cache
def _layout() -> Template:
    return _html_env().from_string(_LAYOUT)


def _parse(env: SandboxedEnvironment, source: str, pointer: str) -> Template:
    try:
        return env.from_string(source)
    except TemplateSyntaxError as exc:
        where = f"{pointer[1:]} line {exc.lineno}"
        raise Unprocessable(
            f"{where}: {exc.message}", [{"pointer": pointer, "line": exc.lineno, "message": exc.message}]
        ) from exc


# --- Placeholders ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Constructs:
    pattern: re.Pattern[str]
    sources: list[str]


def _extract_jinja(source: str) -> tuple[str, _Constructs]:
    """Swap each Jinja construct for an alphanumeric token that Markdown leaves untouched."""
    nonce = secrets.token_hex(4)  # keeps an author's literal text from looking like a placeholder
    sources: list[str] = []

    def mark(match: re.Match[str]) -> str:
        sources.append(match.group(0))
        return f"jph{nonce}n{len(sources) - 1}e"

    marked = _JINJA_CONSTRUCT.sub(mark, source)
    return marked, _Constructs(re.compile(rf"jph{nonce}n(\d+)e"), sources)


def _restore(rendered: str, constructs: _Constructs, escape_data: Callable[[str], str]) -> str:
    """Put the Jinja source back; everything between is escaped so Markdown output is never Jinja."""

    def unwrap(match: re.Match[str]) -> str:
        # A statement alone on its line became its own paragraph; unwrapped, it leaves no empty <p>.
        is_statement = not constructs.sources[int(match.group(2))].startswith("{{")
        return match.group(1) if is_statement else match.group(0)

    rendered = re.sub(rf"<p>({constructs.pattern.pattern})</p>\n?", unwrap, rendered)
    pieces = constructs.pattern.split(rendered)
    # split() alternates data and captured indexes: data, idx, data, idx, ..., data
    return "".join(
        constructs.sources[int(piece)] if i % 2 else escape_data(piece) for i, piece in enumerate(pieces)
    )


def _escape_html_data(data: str) -> str:
    return data.replace("{", "&#123;")


def _escape_text_data(data: str) -> str:
    return data.replace("{", "{{ '{' }}")


# --- Markdown ----------------------------------------------------------------------------------


@cache
def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    md.add_render_rule("th_open", _render_cell)
    md.add_render_rule("td_open", _render_cell)
    return md


def _render_cell(self: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
    # Alignment moves to the `align` attribute because nh3 replaces `style` with the cell style;
    # always set, since browsers would otherwise centre header cells.
    token = tokens[idx]
    style = str(token.attrs.pop("style", ""))
    token.attrSet("align", style.removeprefix("text-align:") or "left")
    return self.renderToken(tokens, idx, options, env)


@cache
def _sanitizer_options() -> dict[str, Any]:
    return {
        "tags": _ALLOWED_TAGS,
        "attributes": _ALLOWED_ATTRIBUTES,
        "tag_attribute_values": {"th": _CELL_ALIGN, "td": _CELL_ALIGN},
        "set_tag_attribute_values": {tag: {"style": style} for tag, style in _INLINE_STYLES.items()},
        "url_schemes": _URL_SCHEMES,
        "strip_comments": True,
    }


def _markdown_to_text(node: SyntaxTreeNode) -> str:
    """A readable plain-text version: blocks separated by blank lines, links as `text (url)`."""
    return "\n\n".join(filter(None, (_block_text(child) for child in node.children)))


def _block_text(node: SyntaxTreeNode) -> str:
    match node.type:
        case "paragraph" | "heading":
            return _inline_text(node.children[0]) if node.children else ""
        case "bullet_list" | "ordered_list":
            return _list_text(node)
        case "blockquote":
            return _prefix_lines(_markdown_to_text(node), "> ")
        case "code_block" | "fence":
            return _prefix_lines(node.content.rstrip("\n"), "    ")
        case "hr":
            return "----"
        case "table":
            return _table_text(node)
        case "html_block":
            return _strip_tags(node.content).strip()
        case _:
            return _markdown_to_text(node)


def _list_text(node: SyntaxTreeNode) -> str:
    start = int(node.attrs.get("start", 1)) if node.type == "ordered_list" else 0
    items = []
    for number, item in enumerate(node.children, start):
        bullet = f"{number}. " if node.type == "ordered_list" else "- "
        body = _markdown_to_text(item)
        items.append(bullet + body.replace("\n", "\n" + " " * len(bullet)))
    return "\n".join(items)


def _table_text(node: SyntaxTreeNode) -> str:
    rows = [row for section in node.children for row in section.children]
    return "\n".join(" | ".join(_inline_text(cell.children[0]) for cell in row.children) for row in rows)


def _inline_text(node: SyntaxTreeNode) -> str:
    parts: list[str] = []
    for child in node.children:
        match child.type:
            case "text" | "code_inline":
                parts.append(child.content)
            case "softbreak" | "hardbreak":
                parts.append("\n")
            case "link":
                label, href = _inline_text(child), str(child.attrs.get("href", ""))
                parts.append(href if label == href or not label else f"{label} ({href})")
            case "image":
                parts.append(_inline_text(child))  # alt text; the picture itself can't be shown
            case "html_inline":
                pass  # tags only; their text arrives as separate text nodes
            case _:
                parts.append(_inline_text(child))
    return "".join(parts)


def _prefix_lines(text: str, prefix: str) -> str:
    return "\n".join(prefix + line if line else prefix.rstrip() for line in text.split("\n"))


def _strip_tags(markup: str) -> str:
    return html.unescape(nh3.clean(markup, tags=set()))


def _tidy_text(text: str) -> str:
    # Tags that rendered to nothing leave blank runs; keep at most one blank line.
    return re.sub(r"\n{3,}", "\n\n", text).strip()
