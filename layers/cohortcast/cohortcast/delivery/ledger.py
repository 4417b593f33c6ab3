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
from cohortcast.storage.delivery import Delivery, SendsTouch

CLAIMED, SENT, SKIPPED, FAILED, DEFERRED = "claimed", "sent", "skipped", "failed", "deferred"
ENGAGEMENT = ("delivered", "opened", "clicked", "bounced", "complained")


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
        write = store.change_write(
            change.previous, change.new, sends=change.sends, expires_at=expires_at, counts=counts, tag=change
        )
        writes.append(write)
    return [write.tag for write in store.write_all(writes)]


def discount_planned_twice(deliveries: list[Delivery], chunk_id: str, *, now: datetime) -> list[Delivery]:
    """Users this chunk found already in the ledger from *another* chunk were planned twice (a
    snapshot taken while they moved between targeted segments): take the extra `planned` back,
    for the segment this chunk planned them in, in the same transaction that marks the record
    with this chunk id, so a redelivered chunk takes nothing back twice. Returns those counted."""
    at = isoformat(now)
    writes = [store.planned_twice_write(d, chunk_id, at=at, tag=d) for d in deliveries]
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
