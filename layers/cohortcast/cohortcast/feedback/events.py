"""SES configuration-set events as they arrive: SNS notifications, raw or in an SNS envelope."""

import json
from dataclasses import dataclass
from typing import Any

from cohortcast.delivery.email import untag_value

FLAG_OF = {
    "Delivery": "delivered",
    "Open": "opened",
    "Click": "clicked",
    "Bounce": "bounced",
    "Complaint": "complained",
}
# Any of these proves SES accepted the message: a claim in doubt is settled as sent.
EVIDENCE_OF_SENDING = frozenset({"Send", "Delivery", "Open", "Click", "Bounce", "Complaint", "DeliveryDelay"})


class NotAnSesEvent(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class LedgerKey:
    user_id: str
    announcement_id: str
    channel: str


@dataclass(frozen=True, slots=True)
class SesEvent:
    kind: str  # eventType: Send, Delivery, Open, Click, Bounce, Complaint, Reject, ...
    message_id: str
    key: LedgerKey | None  # None: not one of our announcement emails (no tags)
    recipients: tuple[str, ...] = ()  # bounced / complained addresses
    permanent: bool = False  # Bounce: bounceType Permanent

    @property
    def flag(self) -> str | None:
        if self.kind == "Bounce" and not self.permanent:
            return None  # transient: SES retries on its own
        return FLAG_OF.get(self.kind)


def parse_body(body: str) -> SesEvent:
    """An SQS body (raw SNS delivery) or an SNS message: either the event or its envelope."""
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise NotAnSesEvent("body is not JSON") from exc
    if isinstance(document, dict) and document.get("Type") == "Notification" and "Message" in document:
        return parse_body(document["Message"])
    return parse_event(document)


def parse_event(document: Any) -> SesEvent:
    if not isinstance(document, dict):
        raise NotAnSesEvent("event is not an object")
    kind = document.get("eventType") or document.get("notificationType")
    mail = document.get("mail")
    if not isinstance(kind, str) or not isinstance(mail, dict) or not isinstance(mail.get("messageId"), str):
        raise NotAnSesEvent("missing eventType or mail.messageId")
    recipients: tuple[str, ...] = ()
    permanent = False
    if kind == "Bounce":
        bounce = document.get("bounce") or {}
        permanent = bounce.get("bounceType") == "Permanent"
        recipients = _addresses(bounce.get("bouncedRecipients"))
    elif kind == "Complaint":
        recipients = _addresses((document.get("complaint") or {}).get("complainedRecipients"))
    return SesEvent(
        kind=kind,
        message_id=mail["messageId"],
        key=_key(mail.get("tags")),
        recipients=recipients,
        permanent=permanent,
    )


def _addresses(entries: Any) -> tuple[str, ...]:
    if not isinstance(entries, list):
        return ()
    return tuple(
        e["emailAddress"] for e in entries if isinstance(e, dict) and isinstance(e.get("emailAddress"), str)
    )


def _key(tags: Any) -> LedgerKey | None:
    if not isinstance(tags, dict):
        return None

    def first(name: str) -> str | None:
        values = tags.get(name)
        return values[0] if isinstance(values, list) and values and isinstance(values[0], str) else None

    announcement, user, channel = first("announcement"), first("user"), first("channel")
    if not (announcement and user and channel):
        return None
    try:
        return LedgerKey(
            user_id=untag_value(user), announcement_id=untag_value(announcement), channel=channel
        )
    except (ValueError, UnicodeDecodeError):
        return None
