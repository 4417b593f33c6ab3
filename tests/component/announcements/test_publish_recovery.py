"""Stuck `publishing`: a crash between storing an announcement and queueing its next page is
recovered by the stalled-publishing sweep, once, without counting anyone twice."""

from datetime import timedelta

import pytest

from cohortcast.announcements import audience as snapshot
from cohortcast.announcements import bus, service
from cohortcast.announcements.models import AnnouncementRequest
from cohortcast.announcements.publish import MAX_RECOVERIES, recover_stalled, run_page
from cohortcast.http.routes.announcements import announcement_view
from cohortcast.messages import PageTask
from cohortcast.storage import announcements as store
from tests.component.announcements.conftest import NOW, publish_messages


class Crash(BaseException):
    """The invocation dies here."""


def crash(*_args, **_kwargs):
    raise Crash()


def request() -> AnnouncementRequest:
    return AnnouncementRequest(title="Hi", body="Hello", audience={"segments": ["seg_a"]})


def run_queued(aws, now) -> int:
    pages = 0
    while messages := publish_messages(aws):
        for message in messages:
            run_page(PageTask.model_validate(message), now)
            pages += 1
    return pages


def test_a_crash_before_page_zero_is_queued_is_recovered_by_the_sweep(aws, segments, monkeypatch):
    segments("seg_a", [f"u{i}" for i in range(30)])
    with monkeypatch.context() as patch:
        patch.setattr(bus, "enqueue_page", crash)
        with pytest.raises(Crash):  # stored as publishing, page 0 never queued
            service.create(
                AnnouncementRequest(title="Hi", body="Hello", audience={"segments": ["seg_a"]}), NOW
            )
    (stuck,) = store.list_announcements(10, None)[0]
    assert stuck["status"] == "publishing" and publish_messages(aws) == []

    assert recover_stalled(NOW + timedelta(minutes=5)) == []  # not stalled yet
    assert recover_stalled(NOW + timedelta(minutes=16)) == [stuck["id"]]
    assert recover_stalled(NOW + timedelta(minutes=16)) == []  # once per check
    assert run_queued(aws, NOW + timedelta(minutes=17)) == 1

    view = announcement_view(stuck["id"])
    assert view.status == "sent" and view.counts.planned == 30
    assert recover_stalled(NOW + timedelta(hours=2)) == []  # finished: out of the sweep's index


def test_a_lost_continuation_resumes_at_the_next_page_without_double_counting(
    aws, segments, fanout_queue, monkeypatch
):
    monkeypatch.setattr(snapshot, "PAGE_SIZE", 10)
    segments("seg_a", [f"u{i}" for i in range(25)])
    announcement_id = service.create(request(), NOW).id
    (page_zero,) = publish_messages(aws)
    with monkeypatch.context() as patch:
        patch.setattr(bus, "enqueue_page", crash)
        with pytest.raises(Crash):  # page 0 planned and fanned out; page 1 never queued
            run_page(PageTask.model_validate(page_zero), NOW)
    # the message went to the DLQ after its retries; nothing else will ever run

    assert recover_stalled(NOW + timedelta(minutes=16)) == [announcement_id]
    (page_one,) = publish_messages(aws)
    assert page_one["page"] == 1  # not page 0 again, with page 0's recorded cursor
    run_page(PageTask.model_validate(page_one), NOW + timedelta(minutes=17))
    run_queued(aws, NOW + timedelta(minutes=17))

    view = announcement_view(announcement_id)
    assert view.status == "sent" and view.pages == 3
    assert view.counts.planned == 25  # page 0 counted once
    recipients = [r["user_id"] for m in fanout_queue() for r in m["recipients"]]
    assert sorted(set(recipients)) == sorted(f"u{i}" for i in range(25))


def test_an_announcement_that_is_progressing_is_left_alone(aws, segments, monkeypatch):
    monkeypatch.setattr(snapshot, "PAGE_SIZE", 10)
    segments("seg_a", [f"u{i}" for i in range(25)])
    service.create(request(), NOW)
    (page_zero,) = publish_messages(aws)
    run_page(PageTask.model_validate(page_zero), NOW + timedelta(minutes=14))  # slow, but moving
    publish_messages(aws)  # page 1 is in flight

    assert recover_stalled(NOW + timedelta(minutes=16)) == []
    assert publish_messages(aws) == []


def test_a_page_that_keeps_failing_is_given_up_after_a_few_recoveries(aws, segments):
    segments("seg_a", ["u1"])
    announcement_id = service.create(request(), NOW).id
    publish_messages(aws)  # every page-0 message fails into the DLQ
    at = NOW
    for _ in range(MAX_RECOVERIES):
        at += timedelta(minutes=16)
        assert recover_stalled(at) == [announcement_id]
        publish_messages(aws)
    assert recover_stalled(at + timedelta(minutes=16)) == []  # left to the DLQ alarm
    assert recover_stalled(at + timedelta(hours=5)) == []
