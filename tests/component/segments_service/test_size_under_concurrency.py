"""A segment's size equals its paged member list once evaluation is quiet, even when real-time
evaluations run in the middle of a backfill (between any two of its DynamoDB requests)."""

import itertools
from collections.abc import Iterator
from contextlib import contextmanager

from cohortcast.segments import backfill, evaluation, service
from cohortcast.segments.registry import get_registry
from cohortcast.storage import aws as aws_clients
from cohortcast.storage import profiles as profile_store
from cohortcast.storage import segments as segment_store
from cohortcast.storage.segments import SegmentDefinition

from .conftest import NOW, profile, save

PRO = {"trait": "plan", "op": "eq", "value": "pro"}
USERS = [f"u{i:02d}" for i in range(60)]


def _flip_plan(user_id: str) -> None:
    """A real-time update: the user's plan changes and the stream evaluates the new profile."""
    record = profile_store.get(f"U#{user_id}")
    record.traits = {"plan": "free" if record.traits.get("plan") == "pro" else "pro"}
    profile_store.save(record)
    evaluation.evaluate_records([profile_store.get(record.pk)], get_registry(), NOW, "event")


@contextmanager
def real_time_updates_between_requests(every: int) -> Iterator[None]:
    """Run one stream evaluation before every `every`-th DynamoDB request made meanwhile."""
    clients = [aws_clients.client("dynamodb"), aws_clients.dynamodb().meta.client]
    calls, users, busy = itertools.count(1), itertools.cycle(USERS), [False]

    def interleave(**_: object) -> None:
        if busy[0] or next(calls) % every:
            return
        busy[0] = True  # the update's own requests do not trigger further updates
        try:
            _flip_plan(next(users))
        finally:
            busy[0] = False

    for client in clients:
        client.meta.events.register("before-call.dynamodb", interleave, unique_id="interleave")
    try:
        yield
    finally:
        for client in clients:
            client.meta.events.unregister("before-call.dynamodb", unique_id="interleave")


def _paged_member_ids(segment_id: str, limit: int) -> list[str]:
    ids, cursor = [], None
    while True:
        page, cursor = service.members(segment_id, limit, cursor)
        ids.extend(member.profile_pk for member in page)
        if cursor is None:
            return ids


def test_size_equals_paged_members_after_backfill_with_concurrent_real_time_updates(aws):
    for i, user_id in enumerate(USERS):
        save(profile(user_id, traits={"plan": "pro" if i % 2 else "free"}))
    definition = SegmentDefinition(segment_id="seg_pro", name="pro", kind="dynamic", rule=PRO)
    segment_store.save_definition(definition)
    sent: list[dict] = []
    backfill.start(segment_store.get_definition("seg_pro"), NOW, sent.append)

    with real_time_updates_between_requests(every=3):
        while sent:  # small pages, so the backfill and the updates interleave within and across pages
            assert backfill.process_page(sent.pop(0), NOW, sent.append) in ("next", "part_done", "finished")
            _paged_member_ids("seg_pro", limit=7)  # someone pages the members meanwhile

    # Quiescence: every user is evaluated against their latest profile once more
    for user_id in USERS:
        evaluation.evaluate_records([profile_store.get(f"U#{user_id}")], get_registry(), NOW, "event")
    pro_users = sorted(f"U#{u}" for u in USERS if profile_store.get(f"U#{u}").traits["plan"] == "pro")
    paged = _paged_member_ids("seg_pro", limit=7)
    assert sorted(paged) == pro_users
    assert segment_store.get_definition("seg_pro").size == len(paged)
    assert segment_store.get_definition("seg_pro").backfill["state"] == "done"


def test_a_backfill_never_writes_its_older_decision_over_a_real_time_change(aws):
    """Given a backfill that read a page of profiles, when real-time updates change some of them
    before the backfill writes, then the members are exactly the users whose latest profile
    matches, with no extra evaluation afterwards (the stream saw no change to correct: the user
    was not a member yet when their update was evaluated)."""
    for user_id in USERS:
        save(profile(user_id, traits={"plan": "pro"}))
    segment_store.save_definition(
        SegmentDefinition(segment_id="seg_pro", name="pro", kind="dynamic", rule=PRO)
    )
    sent: list[dict] = []
    backfill.start(segment_store.get_definition("seg_pro"), NOW, sent.append)

    with real_time_updates_between_requests(every=2):
        while sent:
            assert backfill.process_page(sent.pop(0), NOW, sent.append) in ("next", "part_done", "finished")

    pro_users = sorted(f"U#{u}" for u in USERS if profile_store.get(f"U#{u}").traits["plan"] == "pro")
    assert 0 < len(pro_users) < len(USERS)  # the updates really did interleave
    assert sorted(_paged_member_ids("seg_pro", limit=7)) == pro_users
    assert segment_store.get_definition("seg_pro").size == len(pro_users)
