"""The raw MIME message handed to SES v2 `SendEmail` (Content.Raw)."""

import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from cohortcast.errors import BadRequest

# 7-bit clean (quoted-printable/base64 bodies) so any relay on the way can carry it. Headers stored
# raw are written as they are (refold_source="none"): see List-Unsubscribe below.
_POLICY = SMTP.clone(cte_type="7bit", refold_source="none")
_MAX_LINE = 998  # RFC 5322 hard limit, and the raw List-Unsubscribe line is never folded
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # printable ASCII except ':' (RFC 5322 ftext)
_RESERVED = frozenset(
    name.lower()
    for name in (
        "From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
        "Content-Transfer-Encoding", "List-Unsubscribe", "List-Unsubscribe-Post",
    )
)  # fmt: skip


def build_mime(
    *,
    from_address: str,
    to_address: str,
    subject: str,
    html: str,
    text: str,
    unsubscribe_url: str,
    unsubscribe_mailto: str,
    headers: dict[str, str] | None = None,
    message_id_domain: str,
    now: datetime | None = None,
) -> bytes:
    """multipart/alternative (text, then HTML) with one-click unsubscribe headers (RFC 8058)."""
    extra = headers or {}
    _check_extra_names(extra)
    _check_header_values(
        [
            ("From", from_address),
            ("To", to_address),
            ("Subject", subject),
            ("List-Unsubscribe", unsubscribe_url),
            ("List-Unsubscribe", unsubscribe_mailto),
            *extra.items(),
        ]
    )
    if not unsubscribe_url.startswith("https://"):
        raise BadRequest("the one-click unsubscribe URL must use https (RFC 8058)")
    mailto = unsubscribe_mailto.removeprefix("mailto:")
    list_unsubscribe = f"<{unsubscribe_url}>, <mailto:{mailto}>"
    if len("List-Unsubscribe: ") + len(list_unsubscribe) > _MAX_LINE:
        raise BadRequest("the unsubscribe URL is too long for a mail header")

    message = EmailMessage(policy=_POLICY)
    message["From"] = from_address
    message["To"] = to_address
    message["Subject"] = subject
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=message_id_domain)
    # Stored raw: refolding would turn the long URL into RFC 2047 encoded words clients can't follow.
    message.set_raw("List-Unsubscribe", list_unsubscribe)
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for name, value in extra.items():
        message[name] = value
    message.set_content(text, subtype="plain", charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    return message.as_bytes()


def _check_header_values(values: list[tuple[str, str]]) -> None:
    for name, value in values:
        if "\r" in value or "\n" in value:
            raise BadRequest(f"header {name} must not contain line breaks", [{"header": name}])


def _check_extra_names(extra: dict[str, str]) -> None:
    for name in extra:
        if not _HEADER_NAME.fullmatch(name):
            raise BadRequest("invalid header name", [{"header": name}])
        if name.lower() in _RESERVED:
            raise BadRequest(f"header {name} is set by the message builder", [{"header": name}])
