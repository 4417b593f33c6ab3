"""Push and SMS through SNS: push to the `push_endpoint_arn` trait, SMS to the `phone` trait.

SNS gives no delivery event to settle a claim in doubt, so a push/SMS record left claimed by a
crash is never re-sent: after the settle window it is recorded `failed` with reason
`unconfirmed` (at most once: a duplicate text message is worse than a missing one).
Email opt-outs (the preferences page) don't apply here: people turn push off on the device
and SMS with STOP, which SNS honours itself (its opt-out list).

A `phone` or `push_endpoint_arn` trait that is there but unusable is skipped `invalid_address`;
a message that can't be built for one recipient is that recipient's `failed` outcome.
"""

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cohortcast.delivery.chunk import (
    FAILED_FOR_GOOD,
    AnnouncementLike,
    SendResult,
    Target,
)
from cohortcast.delivery.email import send_with_backoff
from cohortcast.delivery.policy import InvalidAddress
from cohortcast.storage import aws

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")  # ASCII digits: `\d` would take any script's digits
_ENDPOINT_ARN = re.compile(
    r"arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:endpoint/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+"
)
SMS_MAX_CHARS = 640  # SNS splits long texts into parts; keep it to a few


@lru_cache(maxsize=16)
def _compiled(announcement_id: str, title: str, body: str) -> Any:
    from cohortcast.announcements.render import compile_announcement  # lazy: Markdown, Jinja, nh3 are heavy

    return compile_announcement(title, body)


@dataclass(slots=True)
class SnsChannel:
    name: str  # "push" or "sms"
    sns: Any = None
    sleep: Callable[[float], None] = time.sleep

    opt_outs_apply = False
    can_resend = False

    def address(self, traits: dict[str, Any]) -> str | None:
        trait = "push_endpoint_arn" if self.name == "push" else "phone"
        value = traits.get(trait)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            raise InvalidAddress(f"the {trait} trait is a {type(value).__name__}, not a string")
        if self.name == "push":
            if not _ENDPOINT_ARN.fullmatch(value.strip()):
                raise InvalidAddress("not an SNS platform endpoint ARN")
            return value.strip()
        number = re.sub(r"[ ().-]", "", value.strip())
        if not _E164.fullmatch(number):
            raise InvalidAddress("not an E.164 phone number (+ and 7 to 15 digits)")
        return number

    def suppression_hash(self, address: str) -> str | None:
        return None

    def send_all(self, announcement: AnnouncementLike, targets: Sequence[Target]) -> list[SendResult]:
        compiled = _compiled(announcement.id, announcement.title, announcement.body)
        client = self.sns or aws.client("sns")
        return [self._send_one(client, compiled, announcement, target) for target in targets]

    def _send_one(
        self, client: Any, compiled: Any, announcement: AnnouncementLike, target: Target
    ) -> SendResult:
        try:
            request = self._request(compiled, announcement, target)
        except Exception as exc:  # this recipient's message can't be built: theirs alone, never the chunk's
            code = getattr(exc, "code", None) or type(exc).__name__
            return SendResult(FAILED_FOR_GOOD, reason=f"render: {code}")
        result = send_with_backoff(lambda: client.publish(**request), self.sleep)
        if result.kind == FAILED_FOR_GOOD and result.reason == "EndpointDisabled":
            return SendResult(FAILED_FOR_GOOD, reason="endpoint_disabled")
        return result

    def _request(self, compiled: Any, announcement: AnnouncementLike, target: Target) -> dict[str, Any]:
        rendered = compiled.render(
            target.traits, unsubscribe_url="", preferences_url="", user_id=target.delivery.user_id
        )
        text = rendered.text.split("\n--\n", 1)[0].strip()  # without the email footer
        if self.name == "push":
            return _push_request(target.address, rendered.subject, text, announcement.id)
        body = f"{rendered.subject}\n{text}"
        return {
            "PhoneNumber": target.address,
            "Message": body[: SMS_MAX_CHARS - 1] + "…" if len(body) > SMS_MAX_CHARS else body,
            "MessageAttributes": {
                "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Promotional"}
            },
        }


def _push_request(endpoint_arn: str, title: str, text: str, announcement_id: str) -> dict[str, Any]:
    alert = text[:200]
    message = {
        "default": f"{title}: {alert}",
        "APNS": json.dumps(
            {"aps": {"alert": {"title": title, "body": alert}}, "announcement_id": announcement_id}
        ),
        "APNS_SANDBOX": json.dumps(
            {"aps": {"alert": {"title": title, "body": alert}}, "announcement_id": announcement_id}
        ),
        "GCM": json.dumps(
            {"notification": {"title": title, "body": alert}, "data": {"announcement_id": announcement_id}}
        ),
    }
    return {"TargetArn": endpoint_arn, "Message": json.dumps(message), "MessageStructure": "json"}
