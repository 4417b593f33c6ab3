from html.parser import HTMLParser

from cohortcast.preferences.page import (
    PreferencesChange,
    TopicChoice,
    is_one_click_unsubscribe,
    parse_preferences_form,
    render_error_page,
    render_preferences_page,
)

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'


class Inputs(HTMLParser):
    """Collects <input> attributes and <label for> ids to check the form's structure."""

    def __init__(self):
        super().__init__()
        self.inputs: list[dict[str, str | None]] = []
        self.label_for: set[str | None] = set()
        self.forms: list[dict[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "input":
            self.inputs.append(dict(attrs))
        elif tag == "label":
            self.label_for.add(dict(attrs).get("for"))
        elif tag == "form":
            self.forms.append(dict(attrs))


def page(**overrides) -> str:
    arguments = {
        "user_label": "a***@example.com",
        "topics": [TopicChoice("news", "Product news", True), TopicChoice("events", "Events", False)],
        "unsubscribed_all": False,
        "form_action": "/preferences/tok123",
        "message": None,
    }
    return render_preferences_page(**(arguments | overrides))


def test_page_has_a_post_form_to_the_action():
    parsed = Inputs()
    parsed.feed(page())
    assert parsed.forms == [{"method": "post", "action": "/preferences/tok123"}]


def test_each_checkbox_has_a_label():
    parsed = Inputs()
    parsed.feed(page())
    checkboxes = [i for i in parsed.inputs if i["type"] == "checkbox"]
    assert len(checkboxes) == 3  # two topics + unsubscribe from everything
    assert {c["id"] for c in checkboxes} <= parsed.label_for


def test_subscribed_topics_are_checked():
    parsed = Inputs()
    parsed.feed(page())
    checked = {i["value"] for i in parsed.inputs if i["type"] == "checkbox" and "checked" in i}
    assert checked == {"news"}


def test_unsubscribed_all_is_checked_when_set():
    parsed = Inputs()
    parsed.feed(page(unsubscribed_all=True))
    assert "checked" in next(i for i in parsed.inputs if i.get("name") == "unsubscribe_all")


def test_confirmation_message_is_shown():
    assert 'role="status">Your preferences were saved.</p>' in page(message="Your preferences were saved.")


def test_page_escapes_every_value_and_has_no_script():
    html = page(
        user_label=HOSTILE,
        topics=[TopicChoice(HOSTILE, HOSTILE, True)],
        form_action='/p?x="><script>alert(1)</script>',
        message=HOSTILE,
    )
    assert "<script" not in html
    assert "<img" not in html
    assert "&lt;script&gt;" in html


def test_page_loads_no_external_resources():
    html = page()
    assert "http://" not in html
    assert "https://" not in html
    assert "<link" not in html


def test_error_page_escapes_message():
    html = render_error_page(HOSTILE)
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_form_is_parsed_into_a_change():
    change = parse_preferences_form("topic=news&offered=news&offered=events")
    assert change == PreferencesChange(
        subscribed=frozenset({"news"}), unsubscribed=frozenset({"events"}), unsubscribe_all=False
    )


def test_unsubscribe_from_everything_is_parsed():
    assert parse_preferences_form("offered=news&unsubscribe_all=1").unsubscribe_all


def test_rendered_page_posts_back_what_it_shows():
    """What a browser would submit unchanged parses back to the current state."""
    parsed = Inputs()
    parsed.feed(page())
    fields = [f"{i['name']}={i['value']}" for i in parsed.inputs if i["type"] == "hidden" or "checked" in i]
    change = parse_preferences_form("&".join(fields))
    assert change.subscribed == {"news"}
    assert change.unsubscribed == {"events"}


def test_one_click_urlencoded_body_is_detected():
    assert is_one_click_unsubscribe("List-Unsubscribe=One-Click")
    assert is_one_click_unsubscribe("List-Unsubscribe=One-Click", "application/x-www-form-urlencoded")


def test_one_click_multipart_body_is_detected():
    body = '--b1\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--b1--\r\n'
    assert is_one_click_unsubscribe(body, "multipart/form-data; boundary=b1")


def test_other_bodies_are_not_one_click():
    assert not is_one_click_unsubscribe("")
    assert not is_one_click_unsubscribe("topic=news&offered=news")
    assert not is_one_click_unsubscribe("List-Unsubscribe=Yes")
    assert not is_one_click_unsubscribe("not a form", "multipart/form-data; boundary=b1")
