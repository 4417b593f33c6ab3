"""The publish path: audience snapshot, plan, fan-out chunks, paging across invocations."""

import json
from datetime import timedelta

import pytest

from cohortcast.announcements import audience as snapshot
from cohortcast.announcements import service
from cohortcast.announcements.models import AnnouncementRequest, Audience
from cohortcast.announcements.publish import run_page, start_scheduled
from cohortcast.http.routes.announcements import announcement_view
from cohortcast.messages import MAX_RECIPIENTS, PageTask, ScheduledStart
from cohortcast.storage import announcements as store
from tests.component.announcements.conftest import NOW, publish_messages


def create(**fields) -> str:
    request = AnnouncementRequest(title="Hi", body="Hello", **fields)
    return service.create(request, NOW).id


def run_all(aws, announcement_id: str, *, limit_env=None) -> list[dict]:
    """Process publish-queue messages until none are left, like the SQS event source would."""
    tasks = []
    while messages := publish_messages(aws):
        for message in messages:
            tasks.append(message)
            run_page(PageTask.model_validate(message), NOW)
    return tasks


def recipients_of(messages: list[dict], channel: str = "email") -> list[tuple[str, str | None]]:
    return [
        (r["user_id"], r["segment_id"]) for m in messages if m["channel"] == channel for r in m["recipients"]
    ]


def test_snapshot_attributes_each_member_to_the_first_segment_and_drops_exclusions(segments):
    segments("seg_a", ["u1", "u2", "u3"])
    segments("seg_b", ["u3", "u4", "u5"])
    segments("seg_x", ["u2", "u5"])
    audience = Audience(segments=["seg_a", "seg_b"], exclude_segments=["seg_x"])
    found = [r for page in snapshot.iter_snapshot(audience, NOW) for r in page]
    assert sorted(found) == [("u1", "seg_a"), ("u3", "seg_a"), ("u4", "seg_b")]


def test_inline_rule_audience_is_evaluated_over_profiles(aws, profiles, segments):
    profiles({"u1": {"plan": "pro"}, "u2": {"plan": "free"}, "u3": {"plan": "pro"}})
    segments("seg_x", ["u3"])
    audience = Audience(rule={"trait": "plan", "op": "eq", "value": "pro"}, exclude_segments=["seg_x"])
    found = [r for page in snapshot.iter_snapshot(audience, NOW, limit=2) for r in page]
    assert found == [("u1", None)]


def test_publish_fans_out_chunks_per_channel_and_counts_planned(aws, segments, fanout_queue):
    segments("seg_a", [f"u{i}" for i in range(120)])
    announcement_id = create(audience={"segments": ["seg_a"]}, channels=["email", "push"])
    run_all(aws, announcement_id)

    messages = fanout_queue()
    assert len(messages) == 6  # 3 chunks of ≤50 x 2 channels
    assert all(m["_channel_attribute"] == m["channel"] for m in messages)
    assert all(len(m["recipients"]) <= MAX_RECIPIENTS for m in messages)
    assert sorted(recipients_of(messages, "push")) == sorted((f"u{i}", "seg_a") for i in range(120))
    assert len({m["chunk_id"] for m in messages}) == 6
    view = announcement_view(announcement_id)
    assert view.status == "sent"
    assert view.counts.planned == 240
    assert view.counts.pending == 240
    assert view.segments[0].counts.planned == 240


def test_paging_across_invocations_resumes_without_double_counting(aws, segments, fanout_queue, monkeypatch):
    monkeypatch.setattr(snapshot, "PAGE_SIZE", 7)
    segments("seg_a", [f"a{i}" for i in range(20)])
    segments("seg_b", [f"b{i}" for i in range(10)] + ["a1"])
    announcement_id = create(audience={"segments": ["seg_a", "seg_b"]})

    first = publish_messages(aws)
    outcome = run_page(PageTask.model_validate(first[0]), NOW)
    assert not outcome.last
    second = publish_messages(aws)
    # A crash after fanning out page 1 but before the message was deleted: it runs again.
    run_page(PageTask.model_validate(second[0]), NOW)
    run_page(PageTask.model_validate(second[0]), NOW)
    run_all(aws, announcement_id)

    messages = fanout_queue()
    unique = set(recipients_of(messages))
    assert len(unique) == 30
    assert ("a1", "seg_a") in unique and ("a1", "seg_b") not in unique
    view = announcement_view(announcement_id)
    assert view.status == "sent"
    assert view.counts.planned == 30
    by_segment = {s.segment_id: s.counts.planned for s in view.segments}
    assert by_segment == {"seg_a": 20, "seg_b": 10}
    assert view.pages and view.pages > 2


def test_republished_page_reuses_the_recorded_recipients_and_chunk_ids(aws, segments, fanout_queue):
    segments("seg_a", ["u1", "u2"])
    announcement_id = create(audience={"segments": ["seg_a"]})
    task = PageTask.model_validate(publish_messages(aws)[0])
    run_page(task, NOW)
    first = fanout_queue()
    segments("seg_a", ["u3"])  # joins after the snapshot
    store.move_status(announcement_id, ("sent",), "publishing")  # pretend the run had crashed
    run_page(task, NOW)
    again = fanout_queue()
    assert [m["chunk_id"] for m in again] == [m["chunk_id"] for m in first]
    assert recipients_of(again) == recipients_of(first)
    assert announcement_view(announcement_id).counts.planned == 2


def test_scheduled_start_moves_to_publishing_and_queues_page_zero(aws, segments):
    segments("seg_a", ["u1"])
    announcement_id = create(audience={"segments": ["seg_a"]}, send_at=NOW + timedelta(hours=1))
    assert start_scheduled(ScheduledStart(announcement_id=announcement_id), NOW + timedelta(hours=1))
    assert service.get_announcement(announcement_id).status == "publishing"
    assert publish_messages(aws) == [{"v": 1, "announcement_id": announcement_id, "page": 0, "cursor": None}]


def test_cancelled_announcement_is_not_published_when_its_schedule_fires(aws, segments, fanout_queue):
    segments("seg_a", ["u1"])
    announcement_id = create(audience={"segments": ["seg_a"]}, send_at=NOW + timedelta(hours=1))
    service.cancel(announcement_id, NOW)
    assert not start_scheduled(ScheduledStart(announcement_id=announcement_id), NOW + timedelta(hours=1))
    outcome = run_page(PageTask(announcement_id=announcement_id, page=0), NOW)
    assert outcome.skipped == "cancelled"
    assert fanout_queue() == []


def test_publish_function_handles_queue_batches_and_schedule_invokes(
    aws, segments, fanout_queue, lambda_context
):
    from functions.publish import app

    segments("seg_a", ["u1", "u2"])
    announcement_id = create(audience={"segments": ["seg_a"]}, send_at=NOW + timedelta(minutes=5))
    assert app.lambda_handler({"v": 1, "announcement_id": announcement_id}, lambda_context) == {
        "started": True
    }
    message = publish_messages(aws)[0]
    event = {
        "Records": [
            {
                "messageId": "m1",
                "receiptHandle": "r1",
                "body": json.dumps(message),
                "attributes": {"MessageGroupId": announcement_id, "MessageDeduplicationId": "d"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": aws.arn("PublishQueue"),
                "awsRegion": "us-east-1",
            },
            {
                "messageId": "m2",
                "receiptHandle": "r2",
                "body": "not json",
                "attributes": {"MessageGroupId": "x", "MessageDeduplicationId": "e"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": aws.arn("PublishQueue"),
                "awsRegion": "us-east-1",
            },
        ]
    }
    result = app.lambda_handler(event, lambda_context)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    assert sorted(recipients_of(fanout_queue())) == [("u1", "seg_a"), ("u2", "seg_a")]


@pytest.mark.parametrize("deltas", [{"sent": 1, "planned": 0}, {"skipped.unsubscribed": 1}])
def test_counts_always_add_up(aws, segments, deltas):
    segments("seg_a", ["u1", "u2"])
    announcement_id = create(audience={"segments": ["seg_a"]})
    store.plan_page(
        announcement_id, store.PlannedPage(0, [("u1", "seg_a"), ("u2", "seg_a")], None), {"seg_a": 2}
    )
    store.add_counts(announcement_id, "seg_a", {"in_doubt": 1})
    store.add_counts(announcement_id, "seg_a", {"in_doubt": -1, **deltas})
    counts = announcement_view(announcement_id).counts
    done = counts.sent + counts.skipped_total + counts.failed + counts.in_doubt
    assert counts.planned == done + counts.pending == 2
    assert counts.pending == 1


def test_sample_events_run_through_the_publish_handler(aws, lambda_context):
    from pathlib import Path

    from functions.publish import app

    events = Path(__file__).parents[3] / "events"
    started = app.lambda_handler(json.loads((events / "publish_schedule.json").read_text()), lambda_context)
    assert started == {"started": False}  # no such announcement here: logged and dropped
    page = app.lambda_handler(json.loads((events / "publish_page_sqs.json").read_text()), lambda_context)
    assert page == {"batchItemFailures": []}
    sweep = app.lambda_handler(json.loads((events / "publish_sweep.json").read_text()), lambda_context)
    assert sweep == {"requeued": []}  # nothing stuck
