import time

import pytest

from cohortcast.announcements.render import RenderedEmail, compile_announcement, validate_body
from cohortcast.errors import Unprocessable

LINKS = {"unsubscribe_url": "https://example.com/u/tok", "preferences_url": "https://example.com/p/tok"}


def render(body: str, traits: dict | None = None, title: str = "News") -> RenderedEmail:
    return compile_announcement(title, body).render(traits or {}, **LINKS)


def body_of(email: RenderedEmail) -> str:
    """The announcement body inside the layout (between the title heading and the footer)."""
    start = email.html.index("</h1>") + len("</h1>")
    return email.html[start : email.html.index("You are receiving")]


# --- Markdown ---------------------------------------------------------------------------------


def test_markdown_renders_to_html_elements():
    email = render("## Hello\n\nSome **bold**, *em* and ~~old~~ `code`.\n\n- one\n- two\n\n1. first\n")
    html = body_of(email)
    for fragment in ("<h2", "<strong>bold</strong>", "<em>em</em>", "<s>old</s>", "<li>one</li>", "<ol"):
        assert fragment in html
    assert "<code" in html


def test_markdown_table_keeps_alignment():
    email = render("| name | n |\n|---|--:|\n| a | 1 |\n")
    html = body_of(email)
    assert "<table" in html
    assert 'align="right"' in html


def test_elements_carry_inline_styles_for_email_clients():
    html = body_of(render("Hello\n\n[link](https://example.com)"))
    assert '<p style="' in html
    assert '<a href="https://example.com" style="' in html


def test_plain_text_shows_links_with_their_url():
    email = render("Read [the docs](https://example.com/docs) now.\n\n- one\n- two")
    assert "Read the docs (https://example.com/docs) now." in email.text
    assert "- one\n- two" in email.text


def test_plain_text_has_no_markup():
    text = render("# Title\n\nSome **bold** and <b>tags</b>.\n\n> quoted").text
    assert "**" not in text
    assert "<b>" not in text
    assert "> quoted" in text


def test_footer_has_unsubscribe_and_preferences_links():
    email = render("Hi")
    assert 'href="https://example.com/u/tok"' in email.html
    assert 'href="https://example.com/p/tok"' in email.html
    assert "Unsubscribe: https://example.com/u/tok" in email.text
    assert "Manage preferences: https://example.com/p/tok" in email.text


def test_html_is_a_complete_document_with_the_title():
    email = render("Hi", title="Launch day")
    assert email.html.startswith("<!DOCTYPE html>")
    assert "Launch day</h1>" in email.html
    assert email.subject == "Launch day"


# --- Sanitizing the author's HTML ---------------------------------------------------------------


def test_script_tag_is_removed_from_html():
    html = render("Hi\n\n<script>alert(1)</script>\n\nafter").html
    assert "<script" not in html.lower()
    assert "alert(1)" not in html


def test_event_handler_attribute_is_removed():
    html = render('<img src="https://example.com/a.png" onerror="alert(1)">').html
    assert "onerror" not in html
    assert 'src="https://example.com/a.png"' in html


def test_javascript_url_is_removed():
    html = render('[click](javascript:alert(1)) <a href="javascript:alert(2)">x</a>').html
    assert "javascript:alert(2)" not in html
    assert 'href="javascript' not in html


def test_iframe_and_style_are_removed():
    html = body_of(render('<iframe src="https://evil.example"></iframe>\n\n<p style="position:fixed">x</p>'))
    assert "<iframe" not in html
    assert "position:fixed" not in html


# --- Personalisation ------------------------------------------------------------------------------


def test_trait_is_substituted_in_title_and_body():
    email = render("Hi {{ user.first_name }}!", {"first_name": "Ann"}, title="For {{ user.first_name }}")
    assert email.subject == "For Ann"
    assert "Hi Ann!" in email.html
    assert "Hi Ann!" in email.text


def test_user_id_is_available_as_user_id():
    email = compile_announcement("News", "You are {{ user.id }}").render({}, user_id="u-42", **LINKS)
    assert "You are u-42" in email.text


def test_missing_variable_uses_default():
    email = render('Hi {{ user.first_name | default("there") }}!')
    assert "Hi there!" in email.html
    assert "Hi there!" in email.text


def test_missing_variable_renders_empty():
    email = render("Hi {{ user.missing }}{{ user.missing.deeper }}{{ user.age + 1 }}!")
    assert "Hi !" in email.text


def test_condition_on_missing_trait_is_false():
    email = render("{% if user.age > 18 %}\nadult\n{% else %}\nunknown\n{% endif %}")
    assert "unknown" in email.text
    assert "adult" not in email.text


def test_block_statement_leaves_no_empty_paragraph():
    email = render('{% if user.plan == "pro" %}\n## Pro perks\n{% endif %}\n\nEnd', {"plan": "pro"})
    assert "<p></p>" not in body_of(email)
    assert "Pro perks</h2>" in email.html


def test_trait_named_like_a_dict_method_is_the_trait():
    assert "x: 3" in render("x: {{ user.items }}", {"items": 3}).text


def test_trait_with_script_is_shown_as_text_not_markup():
    email = render("Hi {{ user.first_name }}", {"first_name": "<script>alert(1)</script>"})
    assert "<script" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email.html


def test_trait_with_markdown_is_shown_as_text_not_markup():
    email = render("Hi {{ user.first_name }}", {"first_name": "**bold** [x](https://evil.example)"})
    assert "<strong>" not in email.html
    assert "**bold** [x](https://evil.example)" in email.html
    assert 'href="https://evil.example"' not in email.html


def test_trait_javascript_url_in_a_link_is_removed():
    html = render("[profile]({{ user.url }})", {"url": "javascript:alert(1)"}).html
    assert "javascript:" not in html


def test_trait_url_in_a_link_is_kept():
    html = render("[profile]({{ user.url }})", {"url": "https://example.com/me?a=1&b=2"}).html
    assert 'href="https://example.com/me?a=1&amp;b=2"' in html


def test_safe_filter_cannot_unescape_a_trait():
    with pytest.raises(Unprocessable):
        compile_announcement("News", "{{ user.bio | safe }}")


def test_subject_line_breaks_from_traits_are_collapsed():
    email = render("Hi", {"name": "Ann\r\nBcc: x@example.com"}, title="Hi {{ user.name }}")
    assert "\n" not in email.subject
    assert "\r" not in email.subject


def test_literal_braces_in_markdown_stay_literal():
    email = render("Use `{ }` and \\{\\{ user.first_name }}", {"first_name": "Ann"})
    assert "{{ user.first_name }}" in email.text
    assert "Ann" not in email.text


def test_string_with_closing_braces_inside_expression():
    assert 'a "}}" b' in render('a {{ "\\"}}\\"" }} b').text


def test_wrong_trait_type_fails_only_with_unprocessable():
    compiled = compile_announcement("News", "{{ user.age + 1 }}")
    with pytest.raises(Unprocessable):
        compiled.render({"age": "ten"}, **LINKS)


# --- Validation -------------------------------------------------------------------------------------


def test_empty_body_is_rejected():
    with pytest.raises(Unprocessable) as error:
        validate_body("  \n ", "Title")
    assert error.value.details[0]["pointer"] == "/body"


def test_empty_title_is_rejected():
    with pytest.raises(Unprocessable) as error:
        validate_body("Body", "")
    assert error.value.details[0]["pointer"] == "/title"


def test_syntax_error_names_the_line():
    with pytest.raises(Unprocessable) as error:
        validate_body("line one\n\nHi {{ user.name }\n", "Title")
    assert error.value.message.startswith("body line 3: ")
    [detail] = error.value.details
    assert detail["pointer"] == "/body"
    assert detail["line"] == 3
    assert error.value.message == f"body line 3: {detail['message']}"


def test_syntax_error_in_title_points_at_title():
    with pytest.raises(Unprocessable) as error:
        validate_body("Body", "Hi {% if %}")
    assert error.value.details[0]["pointer"] == "/title"
    assert error.value.message.startswith("title line 1: ")


def test_unclosed_block_is_a_syntax_error():
    with pytest.raises(Unprocessable) as error:
        compile_announcement("News", "{% if user.vip %}\nHello\n")
    assert error.value.details[0]["pointer"] == "/body"


def test_unknown_filter_is_rejected():
    with pytest.raises(Unprocessable):
        validate_body("{{ user.name | nosuchfilter }}", "Title")


# --- Speed --------------------------------------------------------------------------------------


def test_render_of_a_2kb_body_is_fast():
    body = (
        "## Hello {{ user.first_name | default('there') }}\n\n"
        + "We shipped **new things** this week. See [the changelog](https://example.com/changes).\n\n" * 22
        + "- one\n- two\n- three\n"
    )
    assert 1800 < len(body) < 2600
    compiled = compile_announcement("News for {{ user.first_name }}", body)
    runs = 200
    started = time.perf_counter()
    for i in range(runs):
        compiled.render({"first_name": f"User {i}"}, **LINKS)
    per_render = (time.perf_counter() - started) / runs
    assert per_render < 0.005  # generous bound for slow CI; typically well under 1 ms
