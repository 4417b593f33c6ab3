"""Segment evaluation (the profiles stream through the evaluate function) while DynamoDB
throttles ~30% of its calls (tests/faults.py)."""

from __future__ import annotations

from collections import Counter

import pytest

from cohortcast.segments import registry
from cohortcast.storage import profiles as profile_store
from cohortcast.storage import segments as segment_store
from cohortcast.storage.segments import SegmentDefinition
from tests.component.segments_service.conftest import profile, save, stream_record

USERS = [f"ev-{i}" for i in range(40)]
PRO = {"trait": "plan", "op": "eq", "value": "pro"}
ACTIVE = {"event": "login", "count": {"gte": 1}, "within": "7d"}
STREAM_BATCH = 10
MAX_DELIVERIES = 60


@pytest.fixture(autouse=True)
def fresh_registry():
    registry.invalidate()
    yield
    registry.invalidate()


def define(name, rule):
    definition = SegmentDefinition(segment_id=f"seg_{name}", name=name, kind="dynamic", rule=rule)
    segment_store.save_definition(definition)
    return definition.segment_id


def run_stream(lambda_context, records):
    """Lambda's DynamoDB stream source with ReportBatchItemFailures: batches in order; a batch
    with failures is retried from its first failed record (the rest of the shard waits)."""
    from functions.evaluate import app

    pending, deliveries, failures = list(records), 0, 0
    while pending:
        batch = pending[:STREAM_BATCH]
        deliveries += 1
        assert deliveries <= MAX_DELIVERIES, "the stream never got past the throttling"
        failed = app.lambda_handler({"Records": batch}, lambda_context)["batchItemFailures"]
        if not failed:
            pending = pending[len(batch) :]
            continue
        failures += len(failed)
        first = min(f["itemIdentifier"] for f in failed)
        start = next(i for i, r in enumerate(batch) if r["dynamodb"]["SequenceNumber"] == first)
        pending = pending[start:]
    return failures


@pytest.mark.parametrize("lost_responses", [0.0, 0.1], ids=["throttling", "and-lost-answers"])
def test_memberships_sizes_and_transitions_stay_exact_when_evaluation_is_throttled(
    dynamodb_faults, lambda_context, lost_responses
):
    """Given two segments (pro plan; logged in within 7 days) and DynamoDB throttling ~30% of
    calls, some past botocore's retries (and in the second case losing the answer to 10% of the
    writes it applied),
    When 40 profiles arrive on the stream and then 12 of them downgrade their plan, and Lambda
    retries every batch that reports failed records,
    Then each segment's size equals its member list, each member is there exactly when the rule
    says so, and each user's enter and exit is in the history exactly once."""
    dynamodb_faults.lost_responses = lost_responses
    with dynamodb_faults.off():
        pro, active = define("pro", PRO), define("active", ACTIVE)
    sequence = iter(range(1, 10_000))

    def changes(plans):
        """The ingest side writes the profiles; the stream carries one record per write."""
        records = []
        with dynamodb_faults.off():
            for user_id, plan in plans.items():
                logins = {"login": {1: 1}} if user_id[-1] in "02468" else None
                record = profile(user_id, traits={"plan": plan}, events=logins)
                previous = profile_store.get(record.pk)
                record.version = previous.version if previous else 0
                records.append(stream_record(save(record), seq=f"{next(sequence):08d}"))
        return records

    first = {u: "pro" if i % 2 else "free" for i, u in enumerate(USERS)}
    failures = run_stream(lambda_context, changes(first))
    downgraded = [u for u, plan in first.items() if plan == "pro"][:12]
    failures += run_stream(lambda_context, changes({u: "free" for u in downgraded}))

    with dynamodb_faults.off():
        members = {sid: {m.profile_pk for m in segment_store.iter_members(sid)} for sid in (pro, active)}
        expected_pro = {f"U#{u}" for u, plan in first.items() if plan == "pro" and u not in downgraded}
        assert members[pro] == expected_pro
        assert members[active] == {f"U#{u}" for u in USERS if u[-1] in "02468"}
        for sid in (pro, active):
            assert segment_store.get_definition(sid).size == len(members[sid]), sid
            history = Counter((t["user_id"], t["kind"]) for t in segment_store.recent_transitions(sid, 1000))
            assert set(history.values()) == {1}, history.most_common(3)
        assert {u for (u, kind) in history if kind == "enter"} == {u for u in USERS if u[-1] in "02468"}
        pro_history = Counter((t["user_id"], t["kind"]) for t in segment_store.recent_transitions(pro, 1000))
        assert sorted(u for (u, kind) in pro_history if kind == "exit") == sorted(downgraded)
    assert failures > 0  # the throttling reached the handler, and Lambda's retries absorbed it
