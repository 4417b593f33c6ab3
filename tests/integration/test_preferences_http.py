"""The preferences form behind an email's link, through real HTTP on the local stack."""

from __future__ import annotations

import email
import email.policy
import re
import uuid

import pytest

from tests.integration.test_delivery import announce, emails_titled, identify, static_segment

pytestmark = pytest.mark.integration


def _checkbox(page: str, topic: str) -> str:
    found = re.search(rf'<input[^>]*value="{re.escape(topic)}"[^>]*>', page)
    assert found, f"no checkbox for {topic}"
    return found.group(0)


def test_keeping_one_topic_and_dropping_another_saves_and_the_next_announcements_follow_it(stack):
    run = uuid.uuid4().hex[:8]
    user = f"pf-{run}"
    identify(stack, {user: {"email": f"{user}@example.org"}})
    stack.drain()
    segment_id = static_segment(stack, [user])
    kept, dropped = f"kept-{run}", f"dropped-{run}"
    announce(stack, segment_id, f"Kept {run}", topic=kept)
    announce(stack, segment_id, f"Dropped {run}", topic=dropped)
    stack.settle()

    received = emails_titled(stack, f"Dropped {run}")[0]
    header = email.message_from_string(received["raw"], policy=email.policy.default)["List-Unsubscribe"]
    path = re.search(r"<https://[^/>]+(/u/[A-Za-z0-9_-]+)>", header).group(1)
    page = stack.http.get(path).text
    assert "checked" in _checkbox(page, kept) and "checked" in _checkbox(page, dropped)

    saved = stack.http.post(
        path,
        content=f"offered={kept}&offered={dropped}&topic={kept}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert saved.status_code == 200, saved.text
    assert saved.headers["content-type"].startswith("text/html")
    assert "Your preferences are saved." in saved.text
    shown = stack.http.get(path).text
    assert "checked" in _checkbox(shown, kept) and "checked" not in _checkbox(shown, dropped)

    announce(stack, segment_id, f"Kept again {run}", topic=kept)
    announce(stack, segment_id, f"Dropped again {run}", topic=dropped)
    stack.settle()
    assert len(emails_titled(stack, f"Kept again {run}")) == 1
    assert emails_titled(stack, f"Dropped again {run}") == []


def test_a_bad_link_answers_an_html_page_not_json(stack):
    response = stack.http.post(
        "/u/not-a-token", content="offered=a", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text.lower()
