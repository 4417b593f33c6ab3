"""Real-time evaluation (profiles stream), the scheduled sweep and backfill jobs, against moto."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cohortcast.messages import segment_job, to_json
from cohortcast.profiles import behaviour
from cohortcast.profiles.behaviour import epoch_hour
from cohortcast.segments import backfill, evaluation, sweep
from cohortcast.segments.registry import get_registry
from cohortcast.services.erasure import erase_user
from cohortcast.storage import segments as segment_store
from cohortcast.storage.segments import SegmentDefinition

from .conftest import NOW, THIS_HOUR, profile, save, stream_record

LOGGED_IN_3_TIMES_7D = {"event": "login", "count": {"gte": 3}, "within": "7d"}
AT_RISK = {"last_seen": {"more_than_ago": "14d"}}


def define(rule, name="s"):
    definition = SegmentDefinition(segment_id=f"seg_{name}", name=name, kind="dynamic", rule=rule)
    segment_store.save_definition(definition)
    return definition.segment_id


def transitions(segment_id):
    return [(t["user_id"], t["kind"]) for t in segment_store.recent_transitions(segment_id, 100)]


@pytest.fixture
def evaluate(aws, lambda_context):
    """Feed stream records to the evaluate function's real handler."""
    from functions.evaluate import app

    def run(*records):
        return app.lambda_handler({"Records": list(records)}, lambda_context)

    return run


def test_user_enters_in_real_time_and_transition_is_written_once_under_redelivery(evaluate):
    # Given a segment of users who logged in 3+ times in 7 days
    sid = define(LOGGED_IN_3_TIMES_7D)
    ann = save(profile("ann", events={"login": {0: 2, 1: 1}}))
    # When the profile change arrives twice (a stream redelivery)
    assert evaluate(stream_record(ann)) == {"batchItemFailures": []}
    evaluate(stream_record(ann))
    # Then ann is a member once, with one transition, and the size counts her once
    assert segment_store.is_member(sid, "U#ann")
    assert transitions(sid) == [("ann", "enter")]
    assert segment_store.get_definition(sid).size == 1
    state = segment_store.get_states(["U#ann"])["U#ann"]
    assert state.segments == {sid}
    # and she is due for a re-check when her oldest login leaves the window
    assert state.due_at is not None and state.due_at > "2026-11-24T09:00"


def test_user_leaves_when_profile_no_longer_matches(evaluate):
    sid = define({"trait": "plan", "op": "eq", "value": "pro"})
    ann = save(profile("ann", traits={"plan": "pro"}))
    evaluate(stream_record(ann))
    ann.traits = {"plan": "free"}
    save(ann)
    evaluate(stream_record(ann))
    assert not segment_store.is_member(sid, "U#ann")
    assert sorted(transitions(sid)) == [("ann", "enter"), ("ann", "exit")]
    assert segment_store.get_definition(sid).size == 0
    # a trait-only rule never needs a sweep
    assert segment_store.get_states(["U#ann"])["U#ann"].due_at is None


def test_older_stream_image_does_not_undo_a_newer_one(evaluate):
    sid = define({"trait": "plan", "op": "eq", "value": "pro"})
    ann = save(profile("ann", traits={"plan": "free"}))
    old = stream_record(ann)
    ann.traits = {"plan": "pro"}
    save(ann)
    evaluate(stream_record(ann))
    evaluate(old)  # redelivered late
    assert segment_store.is_member(sid, "U#ann")


def test_remove_record_of_a_merged_profile_exits_everything_with_a_transition(evaluate):
    from cohortcast.storage import profiles as profile_store

    sid = define({"trait": "plan", "op": "eq", "value": "pro"})
    ann = save(profile("ann", traits={"plan": "pro"}))
    evaluate(stream_record(ann))
    profile_store.put_alias("U#ann", "U#ann-new", "2026-11-24T09:00:00.000Z")  # merged away
    evaluate(stream_record(None, pk="U#ann"))
    assert not segment_store.is_member(sid, "U#ann")
    assert ("ann", "exit") in transitions(sid)
    assert segment_store.get_states(["U#ann"]) == {}


def test_remove_record_of_an_erased_profile_exits_everything_and_forgets_its_transitions(evaluate):
    sid = define({"trait": "plan", "op": "eq", "value": "pro"})
    ann = save(profile("ann", traits={"plan": "pro"}))
    evaluate(stream_record(ann))
    evaluate(stream_record(None, pk="U#ann"))  # no alias: DELETE /v1/users erased the profile
    assert not segment_store.is_member(sid, "U#ann")
    assert transitions(sid) == []
    assert segment_store.get_states(["U#ann"]) == {}
    assert segment_store.get_definition(sid).size == 0


class _ReadCounter:
    """Items read from DynamoDB, counted from real responses (botocore after-call hook)."""

    def __init__(self) -> None:
        self.items = 0
        self.calls: list[str] = []

    def __call__(self, parsed=None, model=None, **_):
        if model is None or parsed is None:
            return
        self.calls.append(model.name)
        if model.name in ("Query", "Scan"):
            self.items += int(parsed.get("Count", len(parsed.get("Items", []))))
        elif model.name == "GetItem":
            self.items += int("Item" in parsed)
        elif model.name == "BatchGetItem":
            self.items += sum(len(v) for v in parsed.get("Responses", {}).values())


def _hook(counter):
    from cohortcast.storage import aws as storage_aws

    for emitter in (
        storage_aws.dynamodb().meta.client.meta.events,
        storage_aws.client("dynamodb").meta.events,
    ):
        emitter.register("after-call.dynamodb", counter)


def _seed_states(registry, users, now):
    records = [save(u) for u in users]
    evaluation.evaluate_records(records, registry, now, "backfill")


def test_sweep_reads_only_due_users_and_moves_at_risk_users(aws):
    # Given 60 users: 50 seen today (not due for 14 days), 10 last seen 13.5 days ago
    sid = define(AT_RISK)
    registry = get_registry()
    active = [profile(f"a{i}", last_seen_days=0.5) for i in range(50)]
    fading = [profile(f"f{i}", last_seen_days=13.5) for i in range(10)]
    _seed_states(registry, active + fading, NOW)
    assert segment_store.count_members(sid) == 0
    counter = _ReadCounter()
    _hook(counter)
    # When the sweep runs a day later
    result = sweep.run(registry, NOW + timedelta(days=1))
    # Then the 10 fading users entered, and only they (plus nothing else) were read
    assert result.summary.evaluated == 10 and result.summary.entered == 10
    assert segment_store.count_members(sid) == 10
    assert counter.items <= 3 * 10, counter.calls
    assert {t["reason"] for t in segment_store.recent_transitions(sid, 100)} == {"time"}
    # And a run at the same time again finds nothing due
    assert sweep.run(registry, NOW + timedelta(days=1)).summary.evaluated == 0


def test_sweep_continues_through_a_queue_message_when_over_budget(aws):
    define(AT_RISK)
    registry = get_registry()
    _seed_states(registry, [profile(f"f{i}", last_seen_days=13.5) for i in range(12)], NOW)
    later = NOW + timedelta(days=1)
    result = sweep.run(registry, later, max_users=5)
    assert result.continuation and result.continuation.job == "sweep"
    total = result.summary.evaluated
    message = segment_job.validate_json(to_json(result.continuation))  # it must survive the queue
    while message:
        step = sweep.run(registry, later, shards=message.shards, start_key=message.start_key, max_users=5)
        total += step.summary.evaluated
        message = step.continuation
    assert total == 12


def test_active_user_leaves_at_risk_after_login(evaluate):
    sid = define(AT_RISK)
    ann = save(profile("ann", last_seen_days=20))
    evaluate(stream_record(ann))
    assert segment_store.is_member(sid, "U#ann")
    ann.last_seen = NOW
    behaviour.add(ann.behaviour, "login", THIS_HOUR)
    save(ann)
    evaluate(stream_record(ann))
    assert not segment_store.is_member(sid, "U#ann")


def test_backfill_resumes_from_cursor_and_is_idempotent(aws, monkeypatch):
    monkeypatch.setattr(backfill, "PAGE_SIZE", 2)
    for i in range(9):
        save(profile(f"u{i}", traits={"plan": "pro" if i % 3 == 0 else "free"}))
    sid = define({"trait": "plan", "op": "eq", "value": "pro"})
    sent: list[dict] = []
    backfill.start(segment_store.get_definition(sid), NOW, sent.append)
    first = sent.pop(0)
    # When one page message is handled, then delivered again (SQS redelivery)
    assert backfill.process_page(first, NOW, sent.append) in ("next", "part_done")
    queued_after_first = len(sent)
    assert backfill.process_page(first, NOW, sent.append) == "duplicate"
    assert len(sent) == queued_after_first
    # a redelivery after a crash before the next message was sent resends it
    assert backfill.process_page(first, NOW, sent.append, redelivered=True) in ("resent", "duplicate")
    # Then the job completes from wherever each part stood, counting each profile once
    while sent:
        backfill.process_page(sent.pop(0), NOW, sent.append)
    shown = segment_store.get_definition(sid)
    assert shown.backfill["state"] == "done"
    assert shown.backfill["processed"] == 9
    assert shown.size == 3 == segment_store.count_members(sid)
    assert len(segment_store.recent_transitions(sid, 100)) == 3


def test_backfill_messages_of_a_replaced_job_are_dropped(aws):
    sid = define({"trait": "plan", "op": "eq", "value": "pro"})
    sent: list[dict] = []
    backfill.start(segment_store.get_definition(sid), NOW, sent.append)
    old = sent[0]
    backfill.start(segment_store.get_definition(sid), NOW, sent.append)
    assert backfill.process_page(old, NOW, sent.append) == "superseded"


def test_backfill_fills_filtered_counters_from_raw_events(aws):
    from cohortcast.storage import events as event_store

    # Given ann used the API feature twice before any segment counted it
    ann = profile("ann", events={"feature_used": {1: 3}})
    save(ann)
    stored = [
        event_store.StoredEvent(
            profile_pk="U#ann",
            sort_time=f"2026-11-23T10:00:0{i}.000Z",
            message_id=f"m{i}",
            type="track",
            event="feature_used",
            timestamp=f"2026-11-23T10:00:0{i}.000Z",
            received_at="2026-11-23T10:00:00.000Z",
            expires_at=0,
            payload={"properties": {"feature": "api" if i < 2 else "ui"}},
        )
        for i in range(3)
    ]
    event_store.put_many(stored)
    rule = {
        "event": "feature_used",
        "where": {"property": "feature", "op": "eq", "value": "api"},
        "count": {"gte": 2},
        "within": "30d",
    }
    sid = define(rule)
    sent: list[dict] = []
    backfill.start(segment_store.get_definition(sid), NOW, sent.append)
    while sent:
        backfill.process_page(sent.pop(0), NOW, sent.append)
    assert segment_store.is_member(sid, "U#ann")
    from cohortcast.storage import profiles as profile_store

    counters = profile_store.get("U#ann").behaviour.counters
    assert list(counters.values()) == [{epoch_hour(datetime(2026, 11, 23, 10, tzinfo=UTC)): 2}]


def test_ingest_increments_registered_filtered_counters(aws):
    from cohortcast.ingest.service import Batch, ingest
    from cohortcast.storage import profiles as profile_store

    rule = {
        "event": "feature_used",
        "where": {"property": "feature", "op": "eq", "value": "api"},
        "count": {"gte": 1},
        "within": "30d",
    }
    define(rule)
    batch = Batch(
        items=[
            {
                "type": "track",
                "userId": "ann",
                "event": "feature_used",
                "messageId": f"m{i}",
                "properties": {"feature": feature},
            }
            for i, feature in enumerate(["api", "ui", "api"])
        ]
    )
    ingest(batch, received_at=NOW, retention_days=90)
    counters = profile_store.get("U#ann").behaviour.counters
    assert list(counters.values()) == [{THIS_HOUR: 2}]


def test_scheduled_event_time_is_the_sweep_clock(aws, lambda_context):
    from functions.evaluate import app

    sid = define(AT_RISK)
    _seed_states(get_registry(), [profile("ann", last_seen_days=10)], NOW)
    event = json.loads(Path("events/evaluate_schedule.json").read_text())
    event["time"] = "2026-11-29T09:00:00Z"
    result = app.lambda_handler(event, lambda_context)
    assert result["entered"] == 1 and result["snapshots"] == 1
    assert segment_store.size_history(sid, 10) == [{"at": "2026-11-29T09:00:00.000Z", "size": 1}]


def test_erasing_a_user_drops_memberships(aws):
    sid = define({"trait": "plan", "op": "eq", "value": "pro"})
    _seed_states(get_registry(), [profile("ann", traits={"plan": "pro"})], NOW)
    erase_user("ann", NOW)
    assert not segment_store.is_member(sid, "U#ann")
    assert segment_store.get_states(["U#ann"]) == {}
    assert segment_store.get_definition(sid).size == 0


def test_sample_stream_and_queue_events_run_through_their_handlers(aws, lambda_context):
    from functions.backfill import app as backfill_app
    from functions.evaluate import app as evaluate_app

    sid = define({"trait": "plan", "op": "eq", "value": "pro"})
    stream = json.loads(Path("events/evaluate_profile_stream.json").read_text())
    assert evaluate_app.lambda_handler(stream, lambda_context) == {"batchItemFailures": []}
    assert segment_store.is_member(sid, "U#user-42")
    message = json.loads(Path("events/backfill_sqs_message.json").read_text())
    assert backfill_app.lambda_handler(message, lambda_context) == {"batchItemFailures": []}
