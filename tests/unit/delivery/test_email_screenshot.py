"""Browser check: the rendered email opens in headless Chromium and paints a real page."""

import shutil
import subprocess
from pathlib import Path

import pytest

from cohortcast.announcements.render import compile_announcement

CHROMIUM = [
    "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

SAMPLE_BODY = """\
Hi {{ user.first_name | default("there") }},

We just shipped **scheduled announcements**: pick a time in each reader's own time zone.

## What's new

- Send at *09:00 local time* for every recipient
- Preview the audience size before you publish
- One-click unsubscribe in every email

| Plan | Included |
|------|---------:|
| Free | 1,000 emails |
| Pro  | 100,000 emails |

> Tip: use `{{ "{{ user.first_name }}" }}` to greet people by name.

Read [the release notes](https://example.com/changelog) for details.
"""


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_rendered_email_screenshot_in_chromium(tmp_path: Path):
    email = compile_announcement("What's new in {{ user.company }}", SAMPLE_BODY).render(
        {"first_name": "Ann", "company": "Cohortcast"},
        unsubscribe_url="https://example.com/u/token",
        preferences_url="https://example.com/p/token",
    )
    page = tmp_path / "email.html"
    page.write_text(email.html, encoding="utf-8")
    screenshot = tmp_path / "email.png"

    command = [
        *CHROMIUM,
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={screenshot}",
        "--window-size=800,1200",
        page.as_uri(),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=60)

    assert screenshot.exists()
    assert screenshot.stat().st_size > 5 * 1024  # a blank page compresses to far less
