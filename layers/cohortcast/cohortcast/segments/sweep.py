"""The scheduled sweep: re-evaluate only users whose memberships can change because time passed.

Each user's state item carries `due_at`, the earliest moment any time-based rule's answer can
flip without new events (`CompiledRule.next_flip`), in the sparse DueIndex. A run queries each
sweep shard for `due_at <= now` (the state item arrives with it), batch-gets those profiles and
re-evaluates them: 2 items read per due user, whatever the total number of users. A run that
has more due users than it may handle in one invocation hands the rest to a queue message.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cohortcast.clock import isoformat
from cohortcast.messages import SweepJob
from cohortcast.segments import evaluation
from cohortcast.segments.registry import Registry
from cohortcast.storage import keys
from cohortcast.storage import profiles as profile_store
from cohortcast.storage import segments as segment_store
from cohortcast.workspace import service as workspace

PAGE_SIZE = 100  # one BatchGetItem of profiles per page
MAX_USERS_PER_RUN = 5_000  # ~30 s of work at most; the rest continues through the queue


@dataclass(slots=True)
class SweepResult:
    summary: evaluation.Summary = field(default_factory=evaluation.Summary)
    continuation: SweepJob | None = None  # the next job message when the run stopped early


def run(
    registry: Registry,
    now: datetime,
    *,
    shards: list[int] | None = None,
    start_key: dict[str, Any] | None = None,
    max_users: int = MAX_USERS_PER_RUN,
) -> SweepResult:
    result = SweepResult()
    remaining = list(range(keys.SWEEP_SHARDS)) if shards is None else list(shards)
    due_by = isoformat(now)
    while remaining:
        shard = remaining[0]
        states, start_key = segment_store.due_page(shard, due_by, PAGE_SIZE, start_key)
        if states:
            _evaluate_page(states, registry, now, result.summary)
        if start_key is None:
            remaining.pop(0)
        if remaining and result.summary.evaluated >= max_users:
            result.continuation = SweepJob(
                job="sweep",
                now=due_by,
                shards=remaining,
                start_key=start_key if start_key and remaining[0] == shard else None,
            )
            break
    return result


def _evaluate_page(
    states: list[segment_store.MembershipState],
    registry: Registry,
    now: datetime,
    summary: evaluation.Summary,
) -> None:
    by_pk = {s.profile_pk: s for s in states}
    records = profile_store.get_many(by_pk)
    for pk in by_pk.keys() - records.keys():
        summary.add(evaluation.profile_gone(pk, now))
    summary.add(
        evaluation.evaluate_records(list(records.values()), registry, now, "time", states=by_pk, guarded=True)
    )


def snapshot_sizes(now: datetime) -> int:
    """One size point per segment per scheduled run, for the history chart."""
    definitions = segment_store.list_definitions()
    for d in definitions:
        segment_store.put_size_snapshot(d.segment_id, isoformat(now), d.size, workspace.expires_at(now))
    return len(definitions)
