"""SES configuration-set events, emulated.

moto accepts SES sends but publishes no configuration-set events. After every `SendEmail`
that SES (moto) accepted with a `ConfigurationSetName`, this publishes a `Send` and a
`Delivery` event, in SES's SNS notification format and with the message's tags, to the SNS
topics the template's event destinations name for that configuration set — so the feedback
path (SesEventsTopic → queue → FeedbackFunction) runs locally as it does on AWS.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3

from local.template import ACCOUNT_ID, Resources, resources_of

log = logging.getLogger("local.ses_events")
EVENT_DELAY_S = 0.5

DESTINATION_TYPES = (
    "AWS::SES::ConfigurationSetEventDestination",
    "AWS::SESV2::ConfigurationSetEventDestination",
)


def topics_by_configuration_set(template: dict[str, Any], resources: Resources) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for resource in resources_of(template).values():
        if resource.get("Type") not in DESTINATION_TYPES:
            continue
        props = resources.resolve(resource.get("Properties") or {})
        destination = props.get("EventDestination") or {}
        sns = destination.get("SnsDestination") or {}
        topic = sns.get("TopicARN") or sns.get("TopicArn")
        if topic and destination.get("Enabled", True):
            found.setdefault(props["ConfigurationSetName"], []).append(topic)
    return found


def install(template: dict[str, Any], resources: Resources, client: Callable[[str], Any]) -> None:
    """Hook boto3's default session (the one our handlers' clients come from)."""
    topics = topics_by_configuration_set(template, resources)
    if not topics:
        return
    events = boto3._get_default_session().events  # clients made later inherit these hooks

    def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["local_ses_request"] = {
            k: params.get(k) for k in ("ConfigurationSetName", "EmailTags", "Destination", "FromEmailAddress")
        }

    def publish(parsed: dict[str, Any], context: dict[str, Any], http_response: Any = None, **_: Any) -> None:
        request = context.get("local_ses_request") or {}
        message_id = parsed.get("MessageId")
        arns = topics.get(request.get("ConfigurationSetName") or "")
        if not message_id or not arns or getattr(http_response, "status_code", 200) >= 300:
            return
        bodies = [json.dumps(_event(kind, message_id, request)) for kind in ("Send", "Delivery")]
        # Later, as SES does: events published while the sender is still writing its outcome would make
        # moto cancel that transaction, and moto rolls a cancelled transaction back by restoring a copy of
        # the whole table, which erases writes other threads made meanwhile (AWS has no such effect).
        timer = threading.Timer(EVENT_DELAY_S, _publish, (client, arns, bodies))
        timer.daemon = True
        timer.start()

    events.register("provide-client-params.sesv2.SendEmail", remember)
    events.register("after-call.sesv2.SendEmail", publish)


def _publish(client: Callable[[str], Any], arns: list[str], bodies: list[str]) -> None:
    for body in bodies:
        for arn in arns:
            try:
                client("sns").publish(TopicArn=arn, Message=body)
            except Exception:  # the emulation must never break the stack
                log.exception("could not publish a local SES event")


def _event(kind: str, message_id: str, request: dict[str, Any]) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{datetime.now(UTC).microsecond // 1000:03d}Z"
    recipients = list((request.get("Destination") or {}).get("ToAddresses") or [])
    tags = {"ses:configuration-set": [request.get("ConfigurationSetName")]}
    tags.update({t["Name"]: [t["Value"]] for t in request.get("EmailTags") or []})
    event: dict[str, Any] = {
        "eventType": kind,
        "mail": {
            "timestamp": now,
            "source": request.get("FromEmailAddress"),
            "sendingAccountId": ACCOUNT_ID,
            "messageId": message_id,
            "destination": recipients,
            "headersTruncated": False,
            "tags": tags,
        },
    }
    if kind == "Send":
        event["send"] = {}
    else:
        event["delivery"] = {
            "timestamp": now,
            "processingTimeMillis": 0,
            "recipients": recipients,
            "smtpResponse": "250 2.0.0 OK (local stack)",
            "reportingMTA": "local",
        }
    return event
