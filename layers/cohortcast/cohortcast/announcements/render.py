"""Announcement rendering: Markdown + Jinja personalisation → subject, sanitized HTML and plain text.

Compile once per announcement (`compile_announcement`), render once per recipient
(`CompiledAnnouncement.render`). Markdown is converted at compile time with every Jinja
construct swapped for an inert placeholder, so trait values are substituted *after* Markdown
and can never become Markdown or HTML: the HTML path autoescapes them, then nh3 sanitizes.
"""

import functools
import html
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from typing import Any

import nh3
from jinja2 import ChainableUndefined, Template, TemplateSyntaxError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment
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
        with _recipient_failure() as pointer:
            subject, body = self._title_and_body(user, pointer)
            pointer[0] = "/body"
            text = _render(self.text_template, user=user)
            # The layout is ours: room for the subject twice and the body once nh3 styled it.
            page = _render(
                _layout(),
                limit=_LAYOUT_LIMIT,
                subject=subject,
                body=Markup(body),  # already sanitized by nh3 above
                font=_FONT,
                unsubscribe_url=unsubscribe_url,
                preferences_url=preferences_url,
            )
        footer = _TEXT_FOOTER.format(unsubscribe_url=unsubscribe_url, preferences_url=preferences_url)
        return RenderedEmail(subject=subject, html=page, text=_tidy_text(text) + footer)

    def render_post(self, traits: Mapping[str, Any], *, user_id: str | None = None) -> tuple[str, str]:
        """(title, sanitised body HTML) for the in-app feed and the changelog: the email's
        pipeline without the email's layout."""
        user = {**traits, "id": user_id} if user_id is not None else dict(traits)
        with _recipient_failure() as pointer:
            return self._title_and_body(user, pointer)

    def _title_and_body(self, user: dict[str, Any], pointer: list[str]) -> tuple[str, str]:
        pointer[0] = "/title"
        subject = " ".join(_render(self.subject_template, user=user).split())
        pointer[0] = "/body"
        return subject, nh3.clean(_render(self.html_template, user=user), **_sanitizer_options())


@contextmanager
def _recipient_failure() -> Iterator[list[str]]:
    """Whatever the traits make a template do (a string in arithmetic, an IndexError in a
    filter, the budget) fails this recipient only, as a 422-shaped error naming the field."""
    pointer = ["/title"]
    try:
        yield pointer
    except Exception as exc:
        over = isinstance(exc, BudgetExceeded | RecursionError)  # a macro calling itself for ever
        problem = "personalisation exceeds its budget" if over else "personalisation failed"
        raise Unprocessable(
            f"{pointer[0][1:]}: {problem}: {exc}",
            [{"pointer": pointer[0], "message": str(exc)}],
            code=BUDGET_CODE if over else "personalisation_failed",
        ) from exc


def validate_body(markdown_text: str, title: str) -> None:
    """Raise `Unprocessable` for an empty title/body, a Jinja syntax error (with its line), or a
    personalisation over its budget with no traits at all (it would fail every recipient)."""
    compiled = compile_announcement(title, markdown_text)
    try:
        compiled.render({}, unsubscribe_url="https://example.invalid/u", preferences_url="", user_id="")
    except Unprocessable as exc:
        if exc.code == BUDGET_CODE:
            raise
        # Anything else depends on the traits: it fails those recipients, not the announcement.


def compile_announcement(title: str, body_markdown: str) -> CompiledAnnouncement:
    for pointer, source in (("/title", title), ("/body", body_markdown)):
        if not source.strip():
            raise Unprocessable(f"{pointer[1:]} must not be empty", [{"pointer": pointer}])
        _parse(_text_env(), source, pointer)
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


# --- The budget ---------------------------------------------------------------------------------
# Templates are written by admins but fed by traits anyone with the public write key can set, so a
# render is bounded whatever either does: work (loop iterations and calls), the size of any value
# it builds and what it writes. Over budget raises `BudgetExceeded`: with no traits at all it is
# seen at create time (422), otherwise it fails that recipient only.

MAX_STEPS = 5_000  # loop iterations + calls (macros, filters, methods) per template render
MAX_SIZE = 200_000  # characters of a string, items of a list, characters written per render
MAX_POWER_BITS = 4_096
_LAYOUT_LIMIT = 8 * MAX_SIZE
BUDGET_CODE = "personalisation_budget"


class BudgetExceeded(SecurityError):
    pass


@dataclass(slots=True)
class _Budget:
    limit: int = MAX_SIZE  # characters written
    steps: int = 0
    written: int = 0

    def step(self, count: int = 1) -> None:
        self.steps += count
        if self.steps > MAX_STEPS:
            raise BudgetExceeded(f"more than {MAX_STEPS:,} loop iterations and calls")

    def write(self, text: str) -> str:
        self.written += len(text)
        if self.written > self.limit:
            raise BudgetExceeded(f"writes more than {self.limit:,} characters")
        return text


_budget: ContextVar[_Budget | None] = ContextVar("render_budget", default=None)


def _current() -> _Budget:
    # Outside `_render` (Jinja folding constants at compile time) sizes are still checked.
    return _budget.get() or _Budget()


def _render(template: Template, *, limit: int = MAX_SIZE, **context: Any) -> str:
    token = _budget.set(_Budget(limit))
    try:
        return template.render(**context)
    finally:
        _budget.reset(token)


def _sized(value: Any) -> Any:
    if isinstance(value, str | bytes | list | tuple | dict | set | frozenset) and len(value) > MAX_SIZE:
        raise BudgetExceeded(f"builds a value of more than {MAX_SIZE:,} characters or items")
    return value


def _deep_size(value: Any) -> int:
    """Characters and items under `value`, counted until past MAX_SIZE (shared references count
    each time, as `str()` would write them). The walk is charged to the budget."""
    seen, stack = 0, [value]
    while stack and seen <= MAX_SIZE:
        item = stack.pop()
        if isinstance(item, str | bytes):
            seen += len(item)
        elif isinstance(item, dict):
            seen += len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            seen += len(item)
            stack.extend(item)
        else:
            seen += 1
    _current().step(seen // 1_000)
    return seen


def _check_deep(value: Any) -> None:
    if isinstance(value, list | tuple | dict | set | frozenset) and _deep_size(value) > MAX_SIZE:
        raise BudgetExceeded(f"writes a value of more than {MAX_SIZE:,} characters or items")


_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_format(spec: Any) -> None:
    """A %-format width or precision is an allocation: `'%200000000d' % 1`."""
    if not isinstance(spec, str):
        return
    for width, precision in _PRINTF_SPEC.findall(spec):
        for number in (width, precision):
            if number == "*" or (number and int(number) > MAX_SIZE):
                raise BudgetExceeded(f"a format width over {MAX_SIZE:,} (or '*')")


def _check_repeat(sequence: Any, times: Any) -> None:
    if isinstance(times, int) and isinstance(sequence, str | bytes | list | tuple):
        size = _deep_size(sequence) if isinstance(sequence, list | tuple) else len(sequence)
        if size * max(times, 0) > MAX_SIZE:
            raise BudgetExceeded(f"repeats a value to more than {MAX_SIZE:,} characters or items")


def _check_power(base: Any, exponent: Any) -> None:
    if not (isinstance(base, int) and isinstance(exponent, int)) or exponent <= 0:
        return
    if abs(base) > 1 and exponent * abs(base).bit_length() > MAX_POWER_BITS:
        raise BudgetExceeded(f"a power of more than {MAX_POWER_BITS:,} bits")


def _check_numbers(args: Iterable[Any]) -> None:
    """Width and count arguments of `center`, `indent`, `batch` and `slice` allocate."""
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_SIZE:
            raise BudgetExceeded(f"an argument over {MAX_SIZE:,}")


_SIZED_ARGUMENT_FILTERS = frozenset({"center", "indent", "batch", "slice"})
_STRINGIFYING_FILTERS = frozenset({"string", "join", "tojson", "pprint", "format", "urlencode", "xmlattr"})


def _budgeted_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)  # keeps Jinja's pass_context/pass_eval_context marker
    def filtered(*args: Any, **kwargs: Any) -> Any:
        _current().step()
        if name in _SIZED_ARGUMENT_FILTERS:
            _check_numbers([*args, *kwargs.values()])
        if name in _STRINGIFYING_FILTERS:
            for arg in (*args, *kwargs.values()):
                _check_deep(arg)
        if name == "format":
            _check_format(args[0] if args else None)
        return _sized(function(*args, **kwargs))

    return filtered


# Methods of a string a template may call: none of them can make a string much bigger.
_STR_METHODS = frozenset(
    {
        "capitalize", "casefold", "count", "endswith", "find", "isalnum", "isalpha", "isdigit",
        "islower", "isspace", "istitle", "isupper", "lower", "lstrip", "partition", "removeprefix",
        "removesuffix", "rfind", "rpartition", "rsplit", "rstrip", "split", "splitlines",
        "startswith", "strip", "swapcase", "title", "upper",
    }
)  # fmt: skip


class _BudgetedCodeGenerator(CodeGenerator):
    """Every loop iteration, every `~` and every piece of template text written goes through the
    budget (the sandbox's own hooks see none of them)."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        node.iter = nodes.Call(
            nodes.EnvironmentAttribute("budgeted_loop"), [node.iter], [], None, None, lineno=node.lineno
        )
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.sized(")
        super().visit_Concat(node, frame)
        self.write(")")

    def _output_const_repr(self, group: Iterable[Any]) -> str:
        return f"environment.write({super()._output_const_repr(group)})"


class _TraitsEnvironment(ImmutableSandboxedEnvironment):
    """`user.items` must mean the trait "items", never the dict method; everything is budgeted."""

    code_generator_class = _BudgetedCodeGenerator
    # Intercepted operators are also never folded at compile time (`'a' * 200000000` was built
    # while the API validated the announcement).
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=self._finalize, **options)
        self.filters = {name: _budgeted_filter(name, f) for name, f in self.filters.items()}
        del self.globals["lipsum"]  # generates up to megabytes of text and has no use in an email

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, dict):
            return obj[attribute] if attribute in obj else self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and attr not in _STR_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repeat(left, right)
            _check_repeat(right, left)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "%":
            _check_format(left)
        return _sized(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _current().step()
        return _sized(super().call(__context, __obj, *args, **kwargs))

    @staticmethod
    def budgeted_loop(iterable: Any) -> Iterator[Any]:
        budget = _current()
        for item in iterable:
            budget.step()
            yield item

    @staticmethod
    def sized(value: Any) -> Any:
        return _sized(value)

    @staticmethod
    def write(text: str) -> str:
        return _current().write(text)

    @staticmethod
    def _finalize(value: Any) -> Any:
        _check_deep(value)
        _current().write(value if isinstance(value, str) else str(value))
        return value


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
