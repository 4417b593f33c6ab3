"""Evaluate users against segments and write only what changed.

`decide` is pure (profile, current memberships, registry, now) → Outcome; `apply` writes an
Outcome: one exactly-once transaction per enter/exit, then the user's state item (segment
set and the next moment a time-based rule can flip, which puts the user in the DueIndex).
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cohortcast.clock import isoformat, parse_timestamp
from cohortcast.profiles.record import view as profile_view
from cohortcast.segments.registry import Registry
from cohortcast.storage import keys
from cohortcast.storage import profiles as profile_store
from cohortcast.storage import segments as segment_store
from cohortcast.storage.profiles import ProfileRecord
from cohortcast.storage.segments import Change, MembershipState
from cohortcast.workspace import service as workspace

# A flip computed at (or before) `now` is re-checked a moment later rather than in a tight loop.
_MIN_DUE_DELAY = timedelta(seconds=1)
# Reads of a profile that keeps changing under a guarded evaluation before it is left to the stream.
_STALE_ATTEMPTS = 3


@dataclass(slots=True)
class Outcome:
    profile_pk: str
    user_id: str | None
    entered: list[str] = field(default_factory=list)
    exited: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)  # ids of deleted segments left in the state
    due_at: datetime | None = None

    @property
    def changed(self) -> bool:
        return bool(self.entered or self.exited or self.forgotten)


@dataclass(slots=True)
class Summary:
    evaluated: int = 0
    entered: int = 0
    exited: int = 0
    skipped: int = 0

    def add(self, other: "Summary") -> None:
        self.evaluated += other.evaluated
        self.entered += other.entered
        self.exited += other.exited
        self.skipped += other.skipped


def decide(
    record: ProfileRecord,
    current: set[str],
    registry: Registry,
    now: datetime,
    *,
    only: set[str] | None = None,
) -> Outcome:
    """Which dynamic segments the user enters and leaves at `now`, and when to look again."""
    view = profile_view(record, frozenset(current))
    outcome = Outcome(profile_pk=record.pk, user_id=record.user_id)
    for segment_id, compiled in registry.compiled.items():
        if only is not None and segment_id not in only:
            continue
        matches = compiled.matches(view, now)
        if matches and segment_id not in current:
            outcome.entered.append(segment_id)
        elif not matches and segment_id in current:
            outcome.exited.append(segment_id)
    outcome.forgotten = sorted(s for s in current if s not in registry.definitions)
    outcome.due_at = next_due(view, registry, now)
    return outcome


def next_due(view: Any, registry: Registry, now: datetime) -> datetime | None:
    flips = [
        flip
        for compiled in registry.time_dependent.values()
        if (flip := compiled.next_flip(view, now)) is not None
    ]
    if not flips:
        return None
    return max(min(flips), now + _MIN_DUE_DELAY)


def apply(
    outcome: Outcome,
    state: MembershipState | None,
    now: datetime,
    reason: str,
    *,
    version: int,
    guarded: bool = False,
) -> Summary:
    """Write the outcome; `guarded` commits each change only while the profile is still at
    `version` (StaleProfile otherwise: the caller reads the profile again)."""
    at = isoformat(now)
    summary = Summary(evaluated=1)
    for kind, segment_ids in (("enter", outcome.entered), ("exit", outcome.exited)):
        for segment_id in segment_ids:
            change = Change(segment_id, outcome.profile_pk, kind, at, reason)
            if segment_store.apply_change(
                change,
                outcome.user_id,
                workspace.expires_at(now),
                profile_version=version if guarded else None,
            ):
                if kind == "enter":
                    summary.entered += 1
                else:
                    summary.exited += 1
    due = isoformat(outcome.due_at) if outcome.due_at else None
    previous_due = state.due_at if state else None
    if outcome.changed or due != previous_due or state is None:
        segment_store.update_state(
            outcome.profile_pk,
            entered=outcome.entered,
            exited=[*outcome.exited, *outcome.forgotten],
            due_at=due,
            profile_version=version,
            updated_at=at,
        )
    return summary


def evaluate_records(
    records: list[ProfileRecord],
    registry: Registry,
    now: datetime,
    reason: str,
    *,
    states: dict[str, MembershipState] | None = None,
    only: set[str] | None = None,
    guarded: bool = False,
) -> Summary:
    """Re-evaluate these profiles; `states` saves the read when the caller has them (the sweep).

    The stream delivers each profile's images in order, so its decisions stand. A backfill or
    sweep (`guarded`) read its profiles a while ago: each change commits only while the
    profile is unchanged, else that profile is read again and decided again.
    """
    if states is None:
        states = segment_store.get_states(r.pk for r in records)
    summary = Summary()
    for record in records:
        state = states.get(record.pk)
        for _ in range(_STALE_ATTEMPTS):
            try:
                summary.add(_evaluate_one(record, state, registry, now, reason, only=only, guarded=guarded))
                break
            except profile_store.StaleProfile:
                fresh = profile_store.get(record.pk)
                if fresh is None:
                    break  # erased meanwhile: its REMOVE record exits everything
                record, state = fresh, segment_store.get_states([record.pk]).get(record.pk)
        else:
            summary.skipped += 1  # still changing: its own stream records evaluate it
    return summary


def _evaluate_one(
    record: ProfileRecord,
    state: MembershipState | None,
    registry: Registry,
    now: datetime,
    reason: str,
    *,
    only: set[str] | None,
    guarded: bool,
) -> Summary:
    if state is not None and record.version < state.profile_version:
        return Summary(skipped=1)  # an older image than one already evaluated (stream redelivery)
    outcome = decide(record, state.segments if state else set(), registry, now, only=only)
    if only is not None:
        outcome.forgotten = []  # a one-segment backfill leaves the rest of the state alone
        if state is not None:
            outcome.due_at = _earliest(outcome.due_at, state.due_at)
    return apply(outcome, state, now, reason, version=record.version, guarded=guarded)


def _earliest(due: datetime | None, stored: str | None) -> datetime | None:
    if stored is None:
        return due
    stored_at = parse_timestamp(stored)
    return stored_at if due is None or stored_at < due else due


def exit_all(profile_pk: str, now: datetime, reason: str, *, record_transitions: bool = True) -> Summary:
    """The profile is gone (deleted, merged away, erased): leave every segment, forget the state."""
    state = segment_store.get_states([profile_pk]).get(profile_pk)
    summary = Summary(evaluated=1)
    if state is None:
        return summary
    user_id, _ = keys.profile_ids(profile_pk)
    at = isoformat(now)
    for segment_id in sorted(state.segments):
        change = Change(segment_id, profile_pk, "exit", at, reason)
        if record_transitions:
            done = segment_store.apply_change(change, user_id, workspace.expires_at(now))
        else:
            done = segment_store.remove_member(segment_id, profile_pk)
        summary.exited += int(done)
    segment_store.delete_state(profile_pk)
    return summary


def erase(profile_pk: str, now: datetime) -> Summary:
    """Erasure: leave every segment without writing a transition, and delete every past
    transition that names the profile."""
    summary = exit_all(profile_pk, now, "erased", record_transitions=False)
    segment_store.delete_history(profile_pk)
    return summary


def profile_gone(profile_pk: str, now: datetime) -> Summary:
    """The profile no longer exists. Merged into another profile (an alias points on): its exits
    are history. Otherwise it was erased, and a stream record or sweep that still names it
    must not write it back."""
    if profile_store.resolve_aliases([profile_pk]):
        return exit_all(profile_pk, now, "profile_deleted")
    return erase(profile_pk, now)


def evaluate_stream_record(record: dict[str, Any], registry: Registry, now: datetime) -> Summary:
    """One ProfilesTable stream record: re-evaluate the profile, or exit everything on REMOVE."""
    change = profile_store.from_stream_record(record)
    if change.removed_pk is not None:
        return profile_gone(change.removed_pk, now)
    if change.profile is None:
        return Summary(skipped=1)
    return evaluate_records([change.profile], registry, now, "event")
