"""Push and SMS through SNS: push to the `push_endpoint_arn` trait, SMS to the `phone` trait.

SNS gives no delivery event to settle a claim in doubt, so a push/SMS record left claimed by a
crash is never re-sent: after the settle window it is recorded `failed` with reason
`unconfirmed` (at most once: a duplicate text message is worse than a missing one).
Email opt-outs (the preferences page) don't apply here: people turn push off on the device
and SMS with STOP, which SNS honours itself (its opt-out list).
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
from cohortcast.storage import aws

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_ENDPOINT_ARN = re.compile(r"^arn:aws[\w-]*:sns:[\w-]+:\d{12}:endpoint/.+")
SMS_MAX_CHARS = 640  # SNS splits long texts into parts; keep it to a few


@lru_cache(maxsize=16)
def _compiled(announcement_id: str, title: str, body: str) -> Any:
    from cohortcast.delivery.render import compile_announcement

    return compile_announcement(title, body)


@dataclass(slots=True)
class SnsChannel:
    name: str  # "push" or "sms"
    sns: Any = None
    sleep: Callable[[float], None] = time.sleep

    opt_outs_apply = False
    can_resend = False

    def address(self, traits: dict[str, Any]) -> str | None:
        if self.name == "push":
            value = traits.get("push_endpoint_arn")
            return value if isinstance(value, str) and _ENDPOINT_ARN.match(value) else None
        value = traits.get("phone")
        if not isinstance(value, str):
            return None
        value = re.sub(r"[\s().-]", "", value)
        return value if _E164.match(value) else None

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
            rendered = compiled.render(
                target.traits, unsubscribe_url="", preferences_url="", user_id=target.delivery.user_id
            )
        except Exception as exc:  # personalisation of this recipient failed (Unprocessable)
            return SendResult(FAILED_FOR_GOOD, reason=f"render: {type(exc).__name__}")
        text = rendered.text.split("\n--\n", 1)[0].strip()  # without the email footer
        if self.name == "push":
            request = _push_request(target.address, rendered.subject, text, announcement.id)
        else:
            body = f"{rendered.subject}\n{text}"
            request = {
                "PhoneNumber": target.address,
                "Message": body[: SMS_MAX_CHARS - 1] + "…" if len(body) > SMS_MAX_CHARS else body,
                "MessageAttributes": {
                    "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Promotional"}
                },
            }
        result = send_with_backoff(lambda: client.publish(**request), self.sleep)
        if result.kind == FAILED_FOR_GOOD and result.reason == "EndpointDisabled":
            return SendResult(FAILED_FOR_GOOD, reason="endpoint_disabled")
        return result


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
