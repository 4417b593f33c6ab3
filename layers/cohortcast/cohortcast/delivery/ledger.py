"""The delivery ledger: one record per (announcement, user, channel) and its state machine.

    (none) ──claim──► claimed ──outcome──► sent | failed
       │                 │  └─ SES throttled: claim withdrawn (back to none: pending)
       │                 └─ crash: stays claimed = *in doubt* until SES's Send event (→ sent)
       │                    or, after the settle window, a resend (a new claim on the same record)
       ├──skip──► skipped (reason)
       └──defer─► deferred (quiet hours; due at their end) ──claim──► claimed ...

Every change is conditional on the state (and claim id) it expects, so repeating it —
a redelivered queue message, a replayed SES event, a second settle run — changes nothing.
Counter deltas are derived from each change and committed in the same transaction as the
change, never separately, which keeps planned = sent + skipped + failed + in_doubt + pending
true even when the process dies between two writes.
"""

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from ulid import ULID

from cohortcast.clock import isoformat
from cohortcast.storage import delivery as store
from cohortcast.storage import keys

CLAIMED, SENT, SKIPPED, FAILED, DEFERRED = "claimed", "sent", "skipped", "failed", "deferred"
ENGAGEMENT = ("delivered", "opened", "clicked", "bounced", "complained")


@dataclass(slots=True)
class Delivery:
    user_id: str
    announcement_id: str
    channel: str
    state: str
    segment_id: str | None = None
    reason: str | None = None
    claim_id: str = ""
    attempts: int = 0
    due_at: str | None = None  # while claimed (settle deadline) or deferred (end of quiet hours)
    message_id: str | None = None
    events: frozenset[str] = frozenset()
    updated_at: str = ""
    chunk_id: str | None = None  # the fan-out chunk that first planned it (kept across resumes)

    @property
    def key(self) -> dict[str, str]:
        return store.record_key(self.user_id, self.announcement_id, self.channel)


def counter_of(state: str | None, reason: str | None = None) -> str | None:
    """The announcement counter a record in this state counts under (deferred: pending)."""
    if state == CLAIMED:
        return "in_doubt"
    if state == SKIPPED:
        return f"skipped.{reason}"
    if state in (SENT, FAILED):
        return state
    return None


def deltas(previous: Delivery | None, new: Delivery | None) -> dict[str, int]:
    out: dict[str, int] = {}
    before = counter_of(previous.state, previous.reason) if previous else None
    after = counter_of(new.state, new.reason) if new else None
    if before == after:
        return out
    if before:
        out[before] = out.get(before, 0) - 1
    if after:
        out[after] = out.get(after, 0) + 1
    return out


def new_claim_id() -> str:
    return str(ULID())


def from_item(item: dict[str, Any]) -> Delivery:
    announcement_id, _, channel = item["sk"].rpartition("#")
    return Delivery(
        user_id=item.get("user_id") or item["pk"].partition("#")[2],
        announcement_id=item.get("announcement_id", announcement_id),
        channel=item.get("channel", channel),
        state=item["state"],
        segment_id=item.get("segment_id"),
        reason=item.get("reason"),
        claim_id=item.get("claim_id", ""),
        attempts=int(item.get("attempts", 0)),
        due_at=item.get("due_at"),
        message_id=item.get("message_id"),
        events=frozenset(item.get("events") or ()),
        updated_at=item.get("updated_at", ""),
        chunk_id=item.get("chunk_id"),
    )


def to_item(delivery: Delivery, expires_at: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        **delivery.key,
        "kind": "delivery",
        "user_id": delivery.user_id,
        "announcement_id": delivery.announcement_id,
        "channel": delivery.channel,
        "state": delivery.state,
        "claim_id": delivery.claim_id,
        "attempts": delivery.attempts,
        "updated_at": delivery.updated_at,
        "expires_at": expires_at,
    }
    optional = {
        "segment_id": delivery.segment_id,
        "reason": delivery.reason,
        "message_id": delivery.message_id,
        "chunk_id": delivery.chunk_id,
    }
    item.update({k: v for k, v in optional.items() if v})
    if delivery.events:
        item["events"] = set(delivery.events)
    if delivery.due_at and delivery.state in (CLAIMED, DEFERRED):
        item["due_pk"] = keys.settle_due_pk(delivery.user_id)
        item["due_at"] = delivery.due_at
    return item


@dataclass(slots=True)
class SendsTouch:
    """Frequency-cap bookkeeping written with a claim: this announcement's send time, stale
    entries removed, the topic remembered for the preferences page."""

    at: str
    stale: tuple[str, ...] = ()
    topic: str | None = None
    record: bool = True


@dataclass(slots=True)
class Change:
    """One record moving from `previous` (None: must not exist) to `new` (None: delete)."""

    previous: Delivery | None
    new: Delivery | None
    sends: SendsTouch | None = None
    payload: Any = None  # what the caller needs after the write (recipient, address, ...)
    deltas: dict[str, int] = field(default_factory=dict)


def apply(changes: list[Change], *, expires_at: int) -> list[Change]:
    """Write the changes whose expectations hold, each with the counter deltas it implies in the
    same transaction; return those applied (their `deltas` are what was counted)."""
    writes = []
    for change in changes:
        change.deltas = deltas(change.previous, change.new)
        reference = change.new or change.previous
        assert reference is not None
        counts = {(reference.announcement_id, reference.segment_id): change.deltas} if change.deltas else {}
        writes.append(store.LedgerWrite(items=_items(change, expires_at), tag=change, counts=counts))
    return [write.tag for write in store.write_all(writes)]


def _expectation(previous: Delivery | None) -> tuple[str, dict[str, str], dict[str, Any]]:
    if previous is None:
        return "attribute_not_exists(pk)", {}, {}
    return (
        "#state = :expected_state AND claim_id = :expected_claim",
        {"#state": "state"},
        {":expected_state": previous.state, ":expected_claim": previous.claim_id},
    )


def _items(change: Change, expires_at: int) -> list[dict[str, Any]]:
    condition, names, values = _expectation(change.previous)
    reference = change.new or change.previous
    assert reference is not None
    if change.new is None:
        items = [store.delete(reference.key, condition, names, values)]
    else:
        items = [store.put(to_item(change.new, expires_at), condition, names, values)]
    if change.sends is not None and (change.sends.record or change.sends.topic or change.sends.stale):
        items.append(_sends_update(reference, change.sends))
    return items


def _sends_update(delivery: Delivery, touch: SendsTouch) -> dict[str, Any]:
    names: dict[str, str] = {"#kind": "kind"}
    values: dict[str, Any] = {":kind": "preferences"}
    sets = ["#kind = :kind"]
    if touch.record:
        names["#send"] = store.SEND_PREFIX + delivery.announcement_id
        values[":at"] = touch.at
        sets.append("#send = if_not_exists(#send, :at)")
    expression = "SET " + ", ".join(sets)
    stale = [s for s in touch.stale if s != delivery.announcement_id]
    if stale:
        for index, announcement_id in enumerate(stale):
            names[f"#stale{index}"] = store.SEND_PREFIX + announcement_id
        expression += " REMOVE " + ", ".join(f"#stale{i}" for i in range(len(stale)))
    if touch.topic:
        values[":topic"] = {touch.topic}
        expression += " ADD topics_seen :topic"
    return store.update(store.preferences_key(delivery.user_id), expression, names=names, values=values)


def discount_planned_twice(deliveries: list[Delivery], chunk_id: str, *, now: datetime) -> list[Delivery]:
    """Users this chunk found already in the ledger from *another* chunk were planned twice (a
    snapshot taken while they moved between targeted segments): take the extra `planned` back,
    for the segment this chunk planned them in, in the same transaction that marks the record
    with this chunk id, so a redelivered chunk takes nothing back twice. Returns those counted."""
    writes = []
    for delivery in deliveries:
        update = store.update(
            delivery.key,
            "SET updated_at = :now ADD planned_twice_by :chunk",
            condition="attribute_exists(pk) AND chunk_id <> :chunk_id "
            "AND NOT contains(planned_twice_by, :chunk_id)",
            values={":now": isoformat(now), ":chunk": {chunk_id}, ":chunk_id": chunk_id},
        )
        counts = {(delivery.announcement_id, delivery.segment_id): {"planned": -1}}
        writes.append(store.LedgerWrite(items=[update], tag=delivery, counts=counts))
    return [write.tag for write in store.write_all(writes)]


def claimed(previous: Delivery | None, template: Delivery, *, now: datetime, settle: timedelta) -> Delivery:
    """The claimed record replacing `previous` (a fresh claim id; due for settling)."""
    return replace(
        template,
        state=CLAIMED,
        reason=None,
        claim_id=new_claim_id(),
        attempts=(previous.attempts if previous else 0) + 1,
        due_at=isoformat(now + settle),
        message_id=None,
        events=previous.events if previous else frozenset(),
        updated_at=isoformat(now),
    )


def settled(
    previous: Delivery, state: str, *, now: datetime, reason: str | None = None, message_id: str | None = None
) -> Delivery:
    return replace(
        previous,
        state=state,
        reason=reason,
        due_at=None,
        message_id=message_id or previous.message_id,
        updated_at=isoformat(now),
    )


def sum_deltas(changes: list[Change]) -> dict[tuple[str, str | None], dict[str, int]]:
    """Deltas per (announcement, segment), zero entries dropped."""
    totals: dict[tuple[str, str | None], dict[str, int]] = {}
    for change in changes:
        reference = change.new or change.previous
        assert reference is not None
        bucket = totals.setdefault((reference.announcement_id, reference.segment_id), {})
        for name, delta in change.deltas.items():
            bucket[name] = bucket.get(name, 0) + delta
    return {k: {n: d for n, d in v.items() if d} for k, v in totals.items() if any(v.values())}
