"""Personalisation has a budget: loop iterations and calls, value sizes and what a render writes."""

import time

import pytest

from cohortcast.announcements.render import BUDGET_CODE, MAX_SIZE, compile_announcement, validate_body
from cohortcast.errors import Unprocessable

URLS = {"unsubscribe_url": "https://acme.example/u/t", "preferences_url": "https://acme.example/u/t"}


@pytest.mark.parametrize(
    "body",
    [
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "{{ 'a' * 200000000 }}",
        "{{ 200000000 * 'a' }}",
        "{{ 'a' | center(200000000) }}",
        "{{ 'x' | indent(200000000) }}",
        "{{ [1] | batch(200000000, 0) | list }}",
        "{{ '%200000000d' % 1 }}",
        "{{ '%200000000d' | format(1) }}",
        "{{ 10 ** 100000000 }}",
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
        "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
        "{% set ns = namespace(s='a') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "{% for i in range(4000) %}" + "x" * 1000 + "{% endfor %}",
        "{% set a = [0] * 100 %}{% set b = [a] * 100 %}{% set c = [b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b] %}{{ c | string }}",  # noqa: E501
    ],
    ids=[
        "nested-ranges", "repeat", "repeat-reversed", "center", "indent", "batch", "printf-width",
        "format-width", "power", "exponential-macro", "endless-recursion", "doubling-concat",
        "static-text-in-a-loop", "nested-lists-to-string",
    ],
)  # fmt: skip
def test_a_body_over_the_budget_without_any_traits_is_rejected_at_create_time_and_quickly(body):
    started = time.monotonic()
    with pytest.raises(Unprocessable) as raised:
        validate_body(body, "Title")
    assert time.monotonic() - started < 2
    assert raised.value.code == BUDGET_CODE
    assert raised.value.details[0]["pointer"] == "/body"
    assert "budget" in raised.value.message


def test_a_title_over_the_budget_names_the_title():
    with pytest.raises(Unprocessable) as raised:
        validate_body("Hello", "{{ 'a' * 300000 }}")
    assert raised.value.details[0]["pointer"] == "/title"


@pytest.mark.parametrize(
    "traits",
    [{"n": 200000000}, {"tags": list(range(6000))}, {"width": 10**9}],
    ids=["repeat-count-from-a-trait", "loop-over-a-long-trait", "width-from-a-trait"],
)
def test_a_budget_that_depends_on_traits_fails_that_recipient_at_render_time_only(traits):
    body = "{{ 'x' * user.n }}{% for t in user.tags %}{{ t }}{% endfor %}{{ 'a' | center(user.width) }}"
    validate_body(body, "Title")  # accepted: with no traits it stays in budget
    compiled = compile_announcement("Title", body)
    with pytest.raises(Unprocessable) as raised:
        compiled.render(traits, **URLS)
    assert raised.value.code == BUDGET_CODE
    ok = compiled.render({"n": 3, "tags": ["a", "b"], "width": 5}, **URLS)
    assert ok.text.startswith("xxxab  a")


def test_an_ordinary_announcement_renders_well_inside_the_budget():
    body = "{% for item in user.items %}- {{ item.name | title }}\n{% endfor %}\n\n" + "Text. " * 2000
    compiled = compile_announcement("Hi {{ user.first_name | default('there') }}", body)
    rendered = compiled.render(
        {"first_name": "Zoë", "items": [{"name": f"n{i}"} for i in range(200)]}, **URLS
    )
    assert rendered.subject == "Hi Zoë"
    assert "N199" in rendered.text and len(rendered.html) < MAX_SIZE


def test_string_methods_that_grow_a_string_are_not_available():
    compiled = compile_announcement("T", "[{{ user.name.center(200000000) }}][{{ user.name.upper() }}]")
    assert "[][ADA]" in compiled.render({"name": "ada"}, **URLS).text


def test_templates_cannot_mutate_traits_to_grow_them():
    compiled = compile_announcement(
        "T", "{% for i in range(30) %}{{ user.tags.extend(user.tags) }}{% endfor %}[{{ user.tags | length }}]"
    )
    assert compiled.render({"tags": ["a"]}, **URLS).text.startswith("[1]")


def test_a_long_body_within_the_budget_renders_though_its_styled_html_is_larger():
    # nh3 adds an inline style to every paragraph: the page is ~5x what the body template wrote.
    body = "\n\n".join(["p"] * 20_000)
    validate_body(body, "Title")
    html = compile_announcement("Title", body).render({}, **URLS).html
    assert len(html) > MAX_SIZE and html.count("<p style=") == 20_000
