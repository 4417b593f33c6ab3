"""`where` conditions of rules that no profile keeps a counter for (preview, inline audiences) and
of backfills are counted from the raw events, never a silent zero."""

from datetime import timedelta

import pytest

from cohortcast.announcements import audience
from cohortcast.announcements.models import Audience
from cohortcast.ingest.service import Batch, ingest
from cohortcast.segments import backfill, service
from cohortcast.segments.registry import invalidate
from cohortcast.storage import profiles as profile_store
from cohortcast.storage import segments as segment_store
from cohortcast.storage.segments import SegmentDefinition

from .conftest import NOW

EXPORTED_CSV = {
    "event": "export",
    "where": {"property": "format", "op": "eq", "value": "csv"},
    "count": {"gte": 1},
    "within": "7d",
}


def track(user_id, fmt, message_id, at=NOW - timedelta(days=1)):
    item = {
        "type": "track",
        "userId": user_id,
        "event": "export",
        "messageId": message_id,
        "timestamp": at.isoformat(),
        "properties": {"format": fmt},
    }
    ingest(Batch(items=[item]), received_at=NOW, retention_days=90)


@pytest.fixture
def exporters(aws):
    track("ann", "csv", "m1")
    track("bob", "pdf", "m2")
    track("cid", "csv", "m3", at=NOW - timedelta(days=8))  # outside the 7-day window
    ingest(
        Batch(items=[{"type": "identify", "userId": "dan", "traits": {}}]), received_at=NOW, retention_days=90
    )


def test_preview_counts_a_where_condition_from_raw_events(exporters):
    found = service.preview({"rule": EXPORTED_CSV}, NOW)
    assert (found.count, found.exact, found.scanned, found.sample) == (1, True, 4, ["ann"])


def test_preview_that_runs_out_of_raw_event_reads_says_it_is_an_estimate(exporters, monkeypatch):
    monkeypatch.setattr(service, "PREVIEW_MAX_EVENT_READS", 1)
    found = service.preview({"rule": EXPORTED_CSV}, NOW)
    assert found.exact is False and found.scanned < 4


def test_inline_announcement_audience_counts_a_where_condition_from_raw_events(exporters):
    pages = list(audience.iter_snapshot(Audience(rule=EXPORTED_CSV), NOW))
    assert [recipient for page in pages for recipient in page] == [("ann", None)]


def test_backfill_recounts_a_counter_that_ingest_started_before_the_backfill_reached_the_profile(aws):
    # ann exported twice before the segment existed
    track("ann", "csv", "m1", at=NOW - timedelta(days=2))
    track("ann", "csv", "m2", at=NOW - timedelta(days=1))
    rule = {**EXPORTED_CSV, "count": {"gte": 3}}
    segment_store.save_definition(
        SegmentDefinition(segment_id="seg_csv", name="csv", kind="dynamic", rule=rule)
    )
    invalidate()
    sent: list[dict] = []
    backfill.start(segment_store.get_definition("seg_csv"), NOW, sent.append)
    # ingest already counts the new segment's counter when her third export arrives
    track("ann", "csv", "m3", at=NOW - timedelta(hours=1))
    assert list(profile_store.get("U#ann").behaviour.counters.values()) != []
    while sent:
        backfill.process_page(sent.pop(0), NOW, sent.append)
    (hours,) = profile_store.get("U#ann").behaviour.counters.values()
    assert sum(hours.values()) == 3
    assert segment_store.is_member("seg_csv", "U#ann")
