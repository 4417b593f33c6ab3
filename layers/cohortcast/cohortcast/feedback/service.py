"""Apply a batch of SES events: suppress, settle claims in doubt, flag engagement, count.

Idempotent: each engagement is a flag in the record's `events` set written with
`NOT contains(events, flag)`, and settling is conditional on the record still being claimed,
so a replayed event changes nothing and counts nothing. The counter deltas of an update are
in the same transaction as the update. Several events for the same message
in one batch (Send + Delivery, typically) become one update of its record.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from cohortcast.clock import isoformat
from cohortcast.delivery import ledger
from cohortcast.delivery.email import email_hash
from cohortcast.feedback.events import EVIDENCE_OF_SENDING, LedgerKey, SesEvent
from cohortcast.storage import delivery as store


@dataclass(slots=True)
class FeedbackResult:
    suppressed: int = 0
    updated: int = 0
    unchanged: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    retry: set[LedgerKey] = field(
        default_factory=set
    )  # lost a race: the events of these keys are redelivered


def apply_events(events: Iterable[SesEvent], *, now: datetime) -> FeedbackResult:
    events = list(events)
    result = FeedbackResult()
    suppressions = {
        email_hash(address): "complaint" if event.kind == "Complaint" else "bounce"
        for event in events
        if event.kind == "Complaint" or (event.kind == "Bounce" and event.permanent)
        for address in event.recipients
    }
    if suppressions:
        result.suppressed = store.put_suppressions(
            {"email_hash": h, "reason": reason, "created_at": isoformat(now)}
            for h, reason in suppressions.items()
        )

    by_key: dict[LedgerKey, list[SesEvent]] = {}
    for event in events:
        if event.key is not None:
            by_key.setdefault(event.key, []).append(event)
    if not by_key:
        return result
    found = store.get_records_by_key((k.user_id, k.announcement_id, k.channel) for k in by_key)

    writes: list[store.LedgerWrite] = []
    for key, key_events in by_key.items():
        record = found.get((key.user_id, key.announcement_id, key.channel))
        if record is None:
            result.unchanged += len(key_events)  # erased user, or an event for a record long expired
            continue
        write = _update_for(record, key, key_events, now)
        if write is None:
            result.unchanged += len(key_events)
        else:
            writes.append(write)

    applied = store.write_all(writes)  # each update commits with its counter deltas
    applied_keys = {w.tag[0] for w in applied}
    result.retry = {w.tag[0] for w in writes} - applied_keys
    for write in applied:
        for name, delta in write.tag[2].items():
            result.counts[name] = result.counts.get(name, 0) + delta
    result.updated = len(applied)
    return result


def _update_for(
    record: store.Delivery, key: LedgerKey, events: list[SesEvent], now: datetime
) -> store.LedgerWrite | None:
    flags = sorted({e.flag for e in events if e.flag} - record.events)
    settle = record.state == ledger.CLAIMED and any(e.kind in EVIDENCE_OF_SENDING for e in events)
    if not flags and not settle:
        return None
    deltas: dict[str, int] = {"in_doubt": -1, "sent": 1} if settle else {}
    for flag in flags:
        deltas[flag] = deltas.get(flag, 0) + 1
    return store.engagement_write(
        record,
        flags=flags,
        sent_message_id=events[0].message_id if settle else None,
        at=isoformat(now),
        counts={(record.announcement_id, record.segment_id): deltas},
        tag=(key, record, deltas),
    )
