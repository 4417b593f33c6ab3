import email
from datetime import UTC, datetime
from email import policy

import pytest

from cohortcast.delivery.mime import build_mime
from cohortcast.errors import BadRequest

UNSUBSCRIBE_URL = "https://prefs.example.com/u/" + "T" * 150


def build(**overrides) -> bytes:
    arguments = {
        "from_address": "Cohortcast <news@example.com>",
        "to_address": "Zoë Example <zoe@example.org>",
        "subject": "Hello Zoë — what's new",
        "html": "<p>Hello <b>Zoë</b> ✓</p>",
        "text": "Hello Zoë ✓",
        "unsubscribe_url": UNSUBSCRIBE_URL,
        "unsubscribe_mailto": "unsubscribe@example.com",
        "message_id_domain": "mail.example.com",
        "now": datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
    }
    return build_mime(**(arguments | overrides))


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)


def test_message_parses_back_with_text_then_html_parts():
    message = parse(build())
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    assert parts[0].get_content().strip() == "Hello Zoë ✓"
    assert "<b>Zoë</b>" in parts[1].get_content()
    assert all(part.get_content_charset() == "utf-8" for part in parts)


def test_both_unsubscribe_headers_are_present():
    message = parse(build())
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE_URL}>, <mailto:unsubscribe@example.com>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_long_unsubscribe_url_is_not_encoded_or_folded():
    raw = build()
    assert f"List-Unsubscribe: <{UNSUBSCRIBE_URL}>".encode() in raw


def test_mailto_prefix_is_not_doubled():
    message = parse(build(unsubscribe_mailto="mailto:unsubscribe@example.com"))
    assert message["List-Unsubscribe"].endswith("<mailto:unsubscribe@example.com>")


def test_non_ascii_subject_round_trips():
    raw = build()
    assert "Zoë".encode() not in raw.split(b"\r\n\r\n", 1)[0]  # headers stay 7-bit
    assert parse(raw)["Subject"] == "Hello Zoë — what's new"


def test_message_is_seven_bit_clean():
    assert max(build()) < 128


def test_date_and_message_id_are_set():
    message = parse(build())
    assert message["Date"] == "Sun, 01 Mar 2026 09:30:00 +0000"
    assert message["Message-ID"].endswith("@mail.example.com>")


def test_extra_headers_are_added():
    message = parse(build(headers={"X-Cohortcast-Announcement": "ann_1"}))
    assert message["X-Cohortcast-Announcement"] == "ann_1"


@pytest.mark.parametrize(
    "override",
    [
        {"subject": "Hi\r\nBcc: victim@example.com"},
        {"to_address": "a@example.com\nBcc: victim@example.com"},
        {"from_address": "a@example.com\r"},
        {"unsubscribe_url": "https://example.com/u\r\nX-Evil: 1"},
        {"headers": {"X-Tag": "a\nBcc: victim@example.com"}},
        {"headers": {"X-Tag\r\nBcc": "victim@example.com"}},
    ],
)
def test_header_injection_is_rejected(override):
    with pytest.raises(BadRequest):
        build(**override)


def test_extra_header_cannot_replace_a_managed_header():
    with pytest.raises(BadRequest):
        build(headers={"list-unsubscribe": "<https://evil.example>"})


def test_one_click_url_must_be_https():
    with pytest.raises(BadRequest):
        build(unsubscribe_url="http://prefs.example.com/u/tok")
