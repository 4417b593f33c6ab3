"""The email channel: render per recipient, raw MIME with one-click unsubscribe, SES v2 send.

SES outcomes map to the ledger as follows:
- accepted → sent (with SES's message id);
- throttled (`TooManyRequestsException`, `Throttling`, `LimitExceededException`) or an SES 5xx
  → retried here with exponential backoff and full jitter; still refused → not sent, the claim
  is withdrawn and the queue message retried (never counted as failed);
- the connection dropped after the request went out (read timeout, connection closed) →
  unknown: the record stays claimed (in doubt) until SES's Send event or the settle job;
- any other SES error (rejected, bad address, sending paused ...) → failed with the error code;
- rendering or building this recipient's MIME failed (whatever the exception) → failed, `render: …`.

Addresses are sent as SES accepts them: the domain IDNA-encoded (Punycode), the local part 7-bit
ASCII only, since SES does not support SMTPUTF8 (RFC 6531); anything else is `invalid_address`.
"""

import base64
import hashlib
import random
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import idna
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from cohortcast.config import get_settings
from cohortcast.delivery.chunk import (
    FAILED_FOR_GOOD,
    NOT_SENT_RETRY,
    SENT_OK,
    UNKNOWN,
    AnnouncementLike,
    SendResult,
    Target,
)
from cohortcast.delivery.mime import build_mime
from cohortcast.delivery.policy import InvalidAddress
from cohortcast.delivery.settings import unsubscribe_secrets
from cohortcast.delivery.tokens import make_token
from cohortcast.errors import CohortcastError
from cohortcast.storage import aws

THROTTLED = frozenset(
    {"TooManyRequestsException", "Throttling", "ThrottlingException", "LimitExceededException"}
)
SEND_ATTEMPTS = 4
BACKOFF_BASE_S = 0.2
BACKOFF_CAP_S = 3.0
SEND_THREADS = 8  # SES calls are I/O bound; one chunk's 50 sends overlap
# RFC 5322 dot-atom: what a To header carries without quoting (quoted local parts are not accepted).
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def sendable_address(value: str) -> str:
    """The address as SES takes it (`local@punycode.domain`), or `InvalidAddress` saying why."""
    value = value.strip()
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        raise InvalidAddress("not an address (local@domain)")
    if not local.isascii():
        raise InvalidAddress("non-ASCII local part (SES does not support SMTPUTF8)")
    if len(local) > 64 or not _LOCAL_PART.fullmatch(local):
        raise InvalidAddress("local part is not an RFC 5322 dot-atom")
    if local.startswith("=?") and local.endswith("?="):
        raise InvalidAddress("an RFC 2047 encoded word is not an address (RFC 2047 section 5)")
    try:
        ascii_domain = idna.encode(domain.rstrip("."), uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise InvalidAddress("domain is not a valid IDNA host name") from exc
    labels = ascii_domain.split(".")
    if len(labels) < 2 or labels[-1].isdigit() or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        raise InvalidAddress("domain is not a host name with a top-level domain")
    address = f"{local}@{ascii_domain}"
    if len(address) > 254:
        raise InvalidAddress("longer than 254 characters")
    return address


def email_hash(address: str) -> str:
    """How an address is known to the suppression list: never stored in clear. Of the sendable
    form, so the trait (`ok@bücher.example`), what we send and what SES reports in a bounce
    (`ok@xn--bcher-kva.example`) are one entry."""
    try:
        canonical = sendable_address(address)
    except InvalidAddress:
        canonical = address.strip()
    return hashlib.sha256(canonical.lower().encode()).hexdigest()


def tag_value(text: str) -> str:
    """SES tag values allow [A-Za-z0-9_-] only: user ids are carried base64url-encoded."""
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def untag_value(value: str) -> str:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()


@lru_cache(maxsize=16)
def _compiled(announcement_id: str, title: str, body: str) -> Any:
    from cohortcast.announcements.render import compile_announcement  # lazy: Markdown, Jinja, nh3 are heavy

    return compile_announcement(title, body)


@dataclass(slots=True)
class EmailChannel:
    """`settings` is the workspace settings; `ses` an SES v2 client (tests wrap it)."""

    settings: Any
    now: datetime
    ses: Any = None
    sleep: Callable[[float], None] = time.sleep
    secret: bytes | None = None
    configuration_set: str | None = None

    name = "email"
    opt_outs_apply = True
    can_resend = True

    def address(self, traits: dict[str, Any]) -> str | None:
        value = traits.get("email")
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            raise InvalidAddress(f"the email trait is a {type(value).__name__}, not a string")
        return sendable_address(value)

    def suppression_hash(self, address: str) -> str | None:
        return email_hash(address)

    def send_all(self, announcement: AnnouncementLike, targets: Sequence[Target]) -> list[SendResult]:
        compiled = _compiled(announcement.id, announcement.title, announcement.body)
        ses = self.ses or aws.ses_client()
        secret = self.secret or unsubscribe_secrets()[0]
        config_set = self.configuration_set or get_settings().ses_configuration_set
        base = (self.settings.public_base_url or get_settings().api_endpoint).rstrip("/")
        sender = self.settings.sender
        domain = sender.rpartition("@")[2].strip(" >") or "localhost"

        def one(target: Target) -> SendResult:
            return self._send_one(
                compiled, announcement, target, ses, secret, config_set, base, sender, domain
            )

        if len(targets) <= 1:
            return [one(t) for t in targets]
        with ThreadPoolExecutor(max_workers=min(SEND_THREADS, len(targets))) as pool:
            return list(pool.map(one, targets))

    def _send_one(
        self,
        compiled: Any,
        announcement: AnnouncementLike,
        target: Target,
        ses: Any,
        secret: bytes,
        config_set: str,
        base: str,
        sender: str,
        domain: str,
    ) -> SendResult:
        record = target.delivery
        token = make_token(secret, record.user_id, announcement.topic, email_hash(target.address))
        page_url = f"{base}/u/{token}"
        # RFC 8058 one-click needs https; only a local stack (http://127.0.0.1) has a plain http base,
        # and there the header is never followed by a mail client.
        header_url = (
            "https://" + page_url.removeprefix("http://") if page_url.startswith("http://") else page_url
        )
        try:
            email = compiled.render(
                target.traits, unsubscribe_url=page_url, preferences_url=page_url, user_id=record.user_id
            )
            raw = build_mime(
                from_address=sender,
                to_address=target.address,
                subject=email.subject,
                html=email.html,
                text=email.text,
                unsubscribe_url=header_url,
                unsubscribe_mailto=f"{sender.rpartition('<')[2].strip(' >')}?subject=unsubscribe",
                message_id_domain=domain,
                now=self.now,
            )
        except Exception as exc:  # this recipient's message can't be built: theirs alone, never the chunk's
            code = exc.code if isinstance(exc, CohortcastError) else type(exc).__name__
            return SendResult(FAILED_FOR_GOOD, reason=f"render: {code}")
        request: dict[str, Any] = {
            "FromEmailAddress": sender,
            "Destination": {"ToAddresses": [target.address]},
            "Content": {"Raw": {"Data": raw}},
            "EmailTags": [
                {"Name": "announcement", "Value": tag_value(record.announcement_id)},
                {"Name": "user", "Value": tag_value(record.user_id)},
                {"Name": "channel", "Value": record.channel},
                {"Name": "claim", "Value": record.claim_id},
                {"Name": "segment", "Value": tag_value(record.segment_id) if record.segment_id else "none"},
            ],
        }
        if config_set:
            request["ConfigurationSetName"] = config_set
        return send_with_backoff(lambda: ses.send_email(**request), self.sleep)


def send_with_backoff(call: Callable[[], dict[str, Any]], sleep: Callable[[float], None]) -> SendResult:
    for attempt in range(SEND_ATTEMPTS):
        try:
            return SendResult(SENT_OK, message_id=call().get("MessageId"))
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if code not in THROTTLED and status < 500:
                return SendResult(FAILED_FOR_GOOD, reason=code or "ses_error")
        except (ReadTimeoutError, ConnectionClosedError):
            return SendResult(UNKNOWN)  # the request may have been accepted
        except (EndpointConnectionError, ConnectTimeoutError):
            pass  # never reached SES: safe to try again
        if attempt + 1 < SEND_ATTEMPTS:
            sleep(random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt)))
    return SendResult(NOT_SENT_RETRY, reason="throttled")
