"""Every email SES (moto) accepted, as JSON, HTML pages and .eml files.

moto keeps sent mail in its SES backend in this same process; we read it there because
no SES API lists sent messages, and take it out of moto's list once copied. The latest
KEPT emails stay in memory (COHORTCAST_LOCAL_OUTBOX_KEEP); the .eml files keep them all.
"""

from __future__ import annotations

import email
import email.policy
import html
import os
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from local.template import ACCOUNT_ID, REGION


@dataclass(frozen=True)
class OutboxEmail:
    message_id: str
    to: list[str]  # plain addresses, each once
    subject: str
    sent_at: str  # when the local stack first saw it, ISO-8601 UTC
    raw: str  # the full MIME as SES received it


def _ses_backend() -> Any:
    from moto.backends import get_backend  # moto is dev-only and heavy: import on use

    return get_backend("ses")[ACCOUNT_ID][REGION]


def _raw_of(message: Any) -> str:
    if hasattr(message, "raw_data"):
        return str(message.raw_data)
    # A Simple (non-raw) send: rebuild the MIME SES would have produced.
    mime = EmailMessage()
    mime["From"] = message.source
    mime["To"] = ", ".join((getattr(message, "destinations", {}) or {}).get("ToAddresses", []))
    mime["Subject"] = getattr(message, "subject", "")
    mime.set_content(
        getattr(message, "body", ""), subtype="html" if "<" in getattr(message, "body", "") else "plain"
    )
    return mime.as_string()


def _recipients(message: Any, parsed: email.message.Message) -> list[str]:
    destinations = message.destinations
    if isinstance(destinations, dict):
        destinations = [a for addresses in destinations.values() for a in addresses]
    headers = [parsed.get(h, "") for h in ("to", "cc")]
    found = [address for _, address in getaddresses([*destinations, *headers]) if address]
    return list(dict.fromkeys(found))


def _subject(parsed: email.message.Message) -> str:
    return str(make_header(decode_header(parsed.get("subject", ""))))


KEPT = int(os.environ.get("COHORTCAST_LOCAL_OUTBOX_KEEP", "5000"))


class Outbox:
    def __init__(self, data_dir: Path, kept: int = KEPT) -> None:
        self.directory = data_dir / "outbox"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.kept = kept
        self._emails: dict[str, OutboxEmail] = {}
        self._lock = threading.Lock()

    def sync(self) -> list[OutboxEmail]:
        """Pick up newly sent messages (and write their .eml); returns those kept, oldest first."""
        with self._lock:
            sent = _ses_backend().sent_messages
            new = sent[: len(sent)]
            del sent[: len(new)]  # sends that land meanwhile are appended after these
            for message in new:
                if message.id in self._emails or not hasattr(message, "destinations"):
                    continue
                raw = _raw_of(message)
                parsed = email.message_from_string(raw)
                self._emails[message.id] = OutboxEmail(
                    message_id=message.id,
                    to=_recipients(message, parsed),
                    subject=_subject(parsed),
                    sent_at=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                    raw=raw,
                )
                (self.directory / f"{message.id}.eml").write_text(raw)
            for oldest in list(self._emails)[: max(0, len(self._emails) - self.kept)]:
                del self._emails[oldest]
            return list(self._emails.values())

    def as_json(self) -> list[dict[str, Any]]:
        return [asdict(e) for e in self.sync()]

    def clear(self) -> int:
        with self._lock:
            _ses_backend().sent_messages.clear()
            count = len(self._emails)
            self._emails.clear()
            for path in self.directory.glob("*.eml"):
                path.unlink(missing_ok=True)
            return count

    def get(self, message_id: str) -> OutboxEmail | None:
        self.sync()
        return self._emails.get(message_id)

    # -- pages
    def index_page(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(e.sent_at)}</td><td>{html.escape(', '.join(e.to))}</td>"
            f'<td><a href="/_local/outbox/{html.escape(e.message_id)}">'
            f"{html.escape(e.subject or '(no subject)')}"
            f"</a></td></tr>"
            for e in reversed(self.sync())
        )
        return (
            "<!doctype html><meta charset=utf-8><title>cohortcast outbox</title>"
            "<style>body{font:14px system-ui;margin:2em}"
            "td{padding:.3em 1em;border-bottom:1px solid #ddd}</style>"
            f"<h1>Outbox</h1><p>{len(self._emails)} emails. "
            "JSON: <a href=/_local/outbox.json>outbox.json</a></p>"
            f"<table><tr><th>sent</th><th>to</th><th>subject</th></tr>{rows}</table>"
        )

    def message_page(self, message_id: str) -> str | None:
        found = self.get(message_id)
        if found is None:
            return None
        parsed = email.message_from_string(found.raw, policy=email.policy.default)
        part = parsed.get_body(preferencelist=("html", "plain"))  # type: ignore[attr-defined]
        if part is None:
            return f"<pre>{html.escape(found.raw)}</pre>"
        content = part.get_content()
        return content if part.get_content_subtype() == "html" else f"<pre>{html.escape(content)}</pre>"


class OutboxWatcher(threading.Thread):
    """Syncs every half second so .eml files and sent_at appear without anyone asking."""

    def __init__(self, outbox: Outbox) -> None:
        super().__init__(name="outbox", daemon=True)
        self.outbox = outbox
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.5):
            self.outbox.sync()

    def stop(self) -> None:
        self.stopping.set()
