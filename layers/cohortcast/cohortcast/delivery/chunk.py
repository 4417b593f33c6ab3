"""One fan-out chunk (≤50 recipients of one announcement on one channel), end to end.

    read announcement (cached) → profiles (BatchGet) → preferences + suppression (BatchGet)
    → decide per recipient → claims and skips, with their counter deltas (transactions)
    → send (channel) → outcomes, with their counter deltas (one transaction)

The channel (`email.EmailChannel`, `sns.SnsChannel`) only finds the address and sends.
A chunk with `resume: true` comes from the settle job: its recipients already have records
(in doubt or deferred) and only those still due are claimed again, at most `MAX_ATTEMPTS` claims
per record: then it is `failed` (`attempts_exhausted`), so nothing is resumed forever.

One recipient never stalls the others: an address trait that can't be used is skipped as
`invalid_address`, and whatever fails while preparing one recipient's message (rendering, MIME)
is that recipient's `failed` outcome.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import ValidationError

from cohortcast.clock import isoformat, parse_timestamp
from cohortcast.delivery import ledger, policy
from cohortcast.delivery.ledger import CLAIMED, DEFERRED, FAILED, SENT, SKIPPED, Change
from cohortcast.messages import FanoutChunk, FanoutRecipient
from cohortcast.storage import delivery as store
from cohortcast.storage import feed as feed_store
from cohortcast.storage import keys
from cohortcast.storage import profiles as profile_store
from cohortcast.storage.delivery import Delivery, SendsTouch

CHANNELS = ("email", "push", "sms")
MAX_ATTEMPTS = 3  # claims of one record (the first send and two settle resends)


class PoisonMessage(ValueError):
    """A queue message that can never be processed: it belongs in the DLQ, not in a retry loop."""


def parse_chunk(body: str) -> FanoutChunk:
    try:
        return FanoutChunk.model_validate_json(body)
    except ValidationError as exc:
        raise PoisonMessage(f"not a fan-out chunk: {exc.error_count()} problem(s)") from exc


# -- ports --------------------------------------------------------------------------------------


class AnnouncementLike(Protocol):
    id: str
    title: str
    body: str
    topic: str | None
    priority: str
    status: str
    send_at: Any
    created_at: Any


@dataclass(slots=True)
class Ports:
    """What the pipeline needs from the rest of cohortcast (composed in `services.ports`)."""

    settings: Callable[[], Any]
    announcement: Callable[[str], AnnouncementLike]


# -- channels -----------------------------------------------------------------------------------

SENT_OK, FAILED_FOR_GOOD, NOT_SENT_RETRY, UNKNOWN = "sent", "failed", "retry", "unknown"


@dataclass(frozen=True, slots=True)
class SendResult:
    kind: str  # SENT_OK | FAILED_FOR_GOOD | NOT_SENT_RETRY | UNKNOWN (in doubt: leave claimed)
    message_id: str | None = None
    reason: str | None = None


@dataclass(slots=True)
class Target:
    delivery: Delivery
    address: str
    traits: dict[str, Any]


class Channel(Protocol):
    name: str
    opt_outs_apply: bool
    can_resend: bool  # False: a claim in doubt has no evidence to settle it (no Send event)

    def address(self, traits: dict[str, Any]) -> str | None: ...  # raises policy.InvalidAddress
    def suppression_hash(self, address: str) -> str | None: ...
    def send_all(self, announcement: AnnouncementLike, targets: Sequence[Target]) -> list[SendResult]: ...


# -- the pipeline -------------------------------------------------------------------------------


@dataclass(slots=True)
class ChunkResult:
    counts: dict[str, int] = field(default_factory=dict)
    retry: bool = False  # some recipients were not sent (throttled): redeliver the message

    def add(self, deltas: dict[str, int]) -> None:
        for name, delta in deltas.items():
            self.counts[name] = self.counts.get(name, 0) + delta


def process_chunk(chunk: FanoutChunk, channel: Channel, ports: Ports, now: datetime) -> ChunkResult:
    result = ChunkResult()
    announcement = ports.announcement(chunk.announcement_id)
    settings = ports.settings()
    recipients = list({r.user_id: r for r in chunk.recipients}.values())
    expires_at = int((now + timedelta(days=settings.retention_days)).timestamp())

    previous: dict[str, Delivery] = {}
    if chunk.resume:
        previous = _due_records(chunk, recipients, now)
        recipients = [r for r in recipients if r.user_id in previous]
        if not recipients:
            return result

    profiles = profile_store.get_many(keys.profile_pk(user_id=r.user_id) for r in recipients)
    traits = {r.user_id: _traits(profiles.get(keys.profile_pk(user_id=r.user_id))) for r in recipients}
    found_addresses = {r.user_id: find_address(channel, traits[r.user_id]) for r in recipients}
    addresses = {u: address for u, (address, _) in found_addresses.items()}
    hashes = {u: channel.suppression_hash(a) if a else None for u, a in addresses.items()}
    preferences, suppressed_hashes = store.recipients_state(
        [r.user_id for r in recipients], [h for h in hashes.values() if h]
    )
    cap = (settings.frequency_cap.count, settings.frequency_cap.days) if settings.frequency_cap else None
    planned_at = _first_planned(announcement)
    unread_wait_until = _unread_wait_until(announcement, chunk.channel, planned_at)
    read_in_app: set[str] = set()
    if unread_wait_until is not None and now >= unread_wait_until:  # before, every one just waits
        states = feed_store.read_states([r.user_id for r in recipients], announcement.id)
        read_in_app = {user_id for user_id, state in states.items() if state.read is not None}

    changes: list[Change] = []
    for recipient in recipients:
        user_id = recipient.user_id
        prior = previous.get(user_id)
        prefs = preferences[user_id]
        address_hash = hashes[user_id]
        template = Delivery(
            user_id,
            announcement.id,
            chunk.channel,
            state="",
            segment_id=recipient.segment_id,
            chunk_id=chunk.chunk_id,
        )
        if prior is not None:
            template = replace(prior, segment_id=prior.segment_id or recipient.segment_id)
        resend = prior is not None and prior.state == CLAIMED
        if resend and not channel.can_resend:
            changes.append(Change(prior, ledger.settled(prior, FAILED, now=now, reason="unconfirmed")))
            continue
        if prior is not None and resend and prior.attempts >= MAX_ATTEMPTS:
            changes.append(Change(prior, ledger.settled(prior, FAILED, now=now, reason="attempts_exhausted")))
            continue
        rules = policy.Rules(
            announcement_id=announcement.id,
            topic=announcement.topic,
            critical=announcement.priority == "critical",
            cancelled=announcement.status == "cancelled",
            cap=cap,
            quiet_hours=tuple(settings.quiet_hours) if settings.quiet_hours else None,  # type: ignore[arg-type]
            default_timezone=settings.default_timezone,
            opt_outs_apply=channel.opt_outs_apply,
            check_cap=not resend,
            first_planned_at=planned_at,
            local_time=getattr(announcement, "local_time", None),
            unread_wait_until=unread_wait_until,
        )
        suppressed = address_hash in suppressed_hashes
        audience = policy.Audience.of(
            addresses[user_id],
            suppressed,
            prefs,
            traits[user_id],
            address_problem=found_addresses[user_id][1],
            read_in_app=user_id in read_in_app,
        )
        try:
            decision = policy.decide(rules, audience, now)
        except Exception as exc:  # a trait that trips the policy fails this recipient, not the chunk
            failed = replace(
                template,
                state=FAILED,
                reason=f"policy: {type(exc).__name__}",
                due_at=None,
                claim_id=template.claim_id or ledger.new_claim_id(),
                updated_at=isoformat(now),
            )
            changes.append(Change(prior, failed))
            continue
        if decision.action == policy.SKIP:
            skipped = replace(
                template,
                state=SKIPPED,
                reason=decision.reason,
                due_at=None,
                claim_id=template.claim_id or ledger.new_claim_id(),
                updated_at=isoformat(now),
            )
            changes.append(Change(prior, skipped))
        elif decision.action == policy.DEFER:
            assert decision.until is not None
            due = isoformat(decision.until)
            if prior is None or prior.state != DEFERRED or prior.due_at != due:
                deferred = replace(
                    template,
                    state=DEFERRED,
                    reason=decision.reason,
                    due_at=due,
                    claim_id=ledger.new_claim_id(),
                    updated_at=isoformat(now),
                )
                changes.append(Change(prior, deferred))
        else:
            claim = ledger.claimed(
                prior, template, now=now, settle=timedelta(minutes=settings.settle_minutes)
            )
            touch = SendsTouch(
                at=isoformat(now),
                stale=policy.stale_sends(prefs.sends, cap, now) if cap else (),
                topic=announcement.topic if channel.opt_outs_apply else None,
                record=cap is not None and not resend,
            )
            target = Target(claim, addresses[user_id] or "", traits[user_id])
            changes.append(Change(prior, claim, sends=touch, payload=target))

    applied = ledger.apply(changes, expires_at=expires_at)
    _count(applied, result)
    if not chunk.resume:
        written = {id(change) for change in applied}
        exists = [c.new for c in changes if c.previous is None and c.new and id(c) not in written]
        if exists:  # duplicates of this chunk, or users another chunk planned too
            discounted = ledger.discount_planned_twice(exists, chunk.chunk_id, now=now)
            result.add({"planned": -len(discounted)} if discounted else {})

    claims = [c for c in applied if c.new is not None and c.new.state == CLAIMED and c.payload is not None]
    if not claims:
        return result
    sent = channel.send_all(announcement, [c.payload for c in claims])
    outcomes: list[Change] = []
    for change, outcome in zip(claims, sent, strict=True):
        claim = change.new
        assert claim is not None
        if outcome.kind == SENT_OK:
            outcomes.append(
                Change(claim, ledger.settled(claim, SENT, now=now, message_id=outcome.message_id))
            )
        elif outcome.kind == FAILED_FOR_GOOD:
            outcomes.append(Change(claim, ledger.settled(claim, FAILED, now=now, reason=outcome.reason)))
        elif outcome.kind == NOT_SENT_RETRY:
            if change.previous is None:
                outcomes.append(Change(claim, None))  # withdrawn: pending again, the message is retried
                result.retry = True
            else:  # resumed by the settle job: back to what it was, due now for its next run
                outcomes.append(Change(claim, replace(change.previous, due_at=isoformat(now))))
        # UNKNOWN: the request may have reached SES; stays claimed (in doubt) for the Send event
    _count(ledger.apply(outcomes, expires_at=expires_at), result)
    return result


def find_address(channel: Channel, traits: dict[str, Any]) -> tuple[str | None, str | None]:
    """(address, None); (None, None) without an address trait; (None, why) when it can't be used.
    A trait anyone with the write key can set must never fail the chunk, whatever it holds."""
    try:
        return channel.address(traits), None
    except policy.InvalidAddress as exc:
        return None, str(exc)
    except Exception as exc:  # any other surprise in a trait is still that recipient's alone
        return None, type(exc).__name__


def _due_records(chunk: FanoutChunk, recipients: list[FanoutRecipient], now: datetime) -> dict[str, Delivery]:
    records = store.get_records((r.user_id for r in recipients), chunk.announcement_id, chunk.channel)
    return {
        user_id: record
        for user_id, record in records.items()
        if record.state in (CLAIMED, DEFERRED) and record.due_at and parse_timestamp(record.due_at) <= now
    }


def _count(applied: list[Change], result: ChunkResult) -> None:
    """What was counted (with the ledger writes themselves) goes into the result for metrics."""
    for deltas in ledger.sum_deltas(applied).values():
        result.add(deltas)


def _traits(record: Any) -> dict[str, Any]:
    return dict(record.traits) if record is not None and isinstance(record.traits, dict) else {}


def _unread_wait_until(
    announcement: AnnouncementLike, channel: str, planned_at: datetime | None
) -> datetime | None:
    """email_if_unread_after: the email waits this long from publishing, for in-app readers."""
    wait = getattr(announcement, "unread_wait", None)
    if wait is None or planned_at is None or channel != "email":
        return None
    return planned_at + wait


def _first_planned(announcement: AnnouncementLike) -> datetime | None:
    for value in (getattr(announcement, "send_at", None), getattr(announcement, "created_at", None)):
        if isinstance(value, datetime):
            return value
        if isinstance(value, str) and value:
            try:
                return parse_timestamp(value)
            except ValueError:
                continue
    return None


__all__ = [
    "CHANNELS",
    "ChunkResult",
    "PoisonMessage",
    "Ports",
    "SendResult",
    "Target",
    "find_address",
    "parse_chunk",
    "process_chunk",
]
