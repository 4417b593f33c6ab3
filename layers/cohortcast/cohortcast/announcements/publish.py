"""Publishing: snapshot the audience page by page, plan it, fan it out over SNS.

One publish-queue message = one page (≤ PAGE_SIZE members read), so no invocation runs long
and an audience of any size is a chain of messages. Every step is idempotent:
- the page is recorded with its recipients and `planned` counts in one transaction, once;
  a re-run of the page republishes exactly the recorded recipients;
- chunk ids are stable, so the deliverer's ledger makes republished chunks harmless;
- the next page's message is deduplicated by the FIFO queue (`<announcement>:<page>`).
"""

import contextlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cohortcast.announcements import audience as snapshot
from cohortcast.announcements import bus
from cohortcast.announcements.models import FANOUT_CHANNELS, Announcement, Audience
from cohortcast.clock import isoformat, parse_timestamp
from cohortcast.messages import PageTask, ScheduledStart
from cohortcast.observability import logger, metrics
from cohortcast.storage import announcements as store
from cohortcast.storage import feed as feed_store
from cohortcast.storage.feed import FeedPost

# An announcement in `publishing` that has recorded no page for this long is stuck (a crash
# between storing it and queueing page 0, or a page that ended in the DLQ). Longer than the
# publish queue's 720 s visibility timeout, so an ordinary retry is not mistaken for a stall.
STALL_AFTER = timedelta(minutes=15)
MAX_RECOVERIES = 3  # then it is left to the DLQ alarm and an operator


@dataclass(slots=True)
class PageOutcome:
    announcement_id: str
    page: int
    recipients: int
    messages: int
    last: bool
    skipped: str | None = None  # why nothing was done


def start_scheduled(start: ScheduledStart, now: datetime) -> bool:
    """The schedule fired: scheduled → publishing, then queue page 0. False if not publishable."""
    document = store.get_announcement(start.announcement_id)
    if document is None:
        logger.warning("scheduled announcement not found", extra={"announcement_id": start.announcement_id})
        return False
    try:
        store.move_status(
            start.announcement_id,
            ("scheduled",),
            "publishing",
            {"published_at": isoformat(now)},
            stall_check_at=isoformat(now + STALL_AFTER),
        )
    except store.StatusConflict:
        current = (store.get_announcement(start.announcement_id) or {}).get("status")
        if current != "publishing":  # cancelled or already sent; a retried invoke re-queues page 0
            logger.info("schedule fired for a non-scheduled announcement", extra={"status": current})
            return False
    bus.enqueue_page(start.announcement_id, 0, None)
    return True


def run_page(task: PageTask, now: datetime) -> PageOutcome:
    """Snapshot (or re-read) page `task.page`, fan it out, then queue the next page or finish."""
    outcome = PageOutcome(task.announcement_id, task.page, 0, 0, last=False)
    document = store.get_announcement(task.announcement_id)
    if document is None:
        outcome.skipped = "not_found"
        return outcome
    status = document["status"]
    if status in ("cancelled", "sent"):
        outcome.skipped = status  # a late duplicate: the work is over
        return outcome
    if status == "scheduled":  # queued by hand or by a retried schedule: publishing starts now
        with contextlib.suppress(store.StatusConflict):
            store.move_status(
                task.announcement_id,
                ("scheduled",),
                "publishing",
                {"published_at": isoformat(now)},
                stall_check_at=isoformat(now + STALL_AFTER),
            )
    if task.page == 0 and "in_app" in document["channels"]:
        _put_feed_post(document, now)
    fanout_channels = [c for c in document["channels"] if c in FANOUT_CHANNELS]
    if not fanout_channels:  # in-app only: the feed reads it live, nobody is fanned out to
        _finish(task, now)
        outcome.last = True
        return outcome
    planned = store.get_page(task.announcement_id, task.page)
    if planned is None:
        recipients, next_cursor = snapshot.snapshot_page(
            Audience.model_validate(document["audience"]), task.cursor, now
        )
        per_segment = Counter(segment_id for _, segment_id in recipients)
        channels = len(fanout_channels)
        planned = store.plan_page(
            task.announcement_id,
            store.PlannedPage(
                page=task.page, recipients=recipients, next_cursor=next_cursor, planned_at=isoformat(now)
            ),
            {segment_id: n * channels for segment_id, n in per_segment.items()},
        )
    messages = bus.fanout_messages(task.announcement_id, fanout_channels, task.page, planned.recipients)
    if messages:
        bus.publish_fanout(messages)
    outcome.recipients, outcome.messages = len(planned.recipients), len(messages)
    metrics.add_metric(name="RecipientsFannedOut", unit="Count", value=outcome.recipients)
    if planned.next_cursor is not None:
        bus.enqueue_page(task.announcement_id, task.page + 1, planned.next_cursor)
        return outcome
    outcome.last = True
    _finish(task, now)
    return outcome


def _finish(task: PageTask, now: datetime) -> None:
    with contextlib.suppress(store.StatusConflict):  # a duplicate run of the last page finished it
        store.move_status(
            task.announcement_id,
            ("publishing",),
            "sent",
            {"completed_at": isoformat(now), "pages": task.page + 1},
            clear_stall_check=True,
        )


def _put_feed_post(document: dict[str, Any], now: datetime) -> None:
    """The announcement enters the in-app feed (again, harmlessly, when page 0 is re-run)."""
    announcement = Announcement.model_validate(document)
    visible_until = parse_timestamp(announcement.visible_until) if announcement.visible_until else None
    feed_store.put_post(
        FeedPost(
            announcement_id=announcement.id,
            published_at=announcement.published_at or isoformat(now),
            audience=announcement.audience.model_dump(mode="json"),
            pinned=announcement.pinned,
            labels=tuple(announcement.labels),
            visible_until=announcement.visible_until,
            public=announcement.audience.public,
        ),
        # gone from the partition a day after it stops showing (the feed filters it before)
        expires_at=int((visible_until + timedelta(days=1)).timestamp()) if visible_until else None,
    )


def recover_stalled(now: datetime) -> list[str]:
    """Re-queue the next page of announcements stuck in `publishing`; returns their ids.

    Run every few minutes. An announcement in `publishing` carries a progress check in the
    DueIndex; when it is due, the last recorded page says whether it moved meanwhile (then the
    check is pushed back) or not (then the page after it — or page 0, or the last page again if
    it was the last — is queued). Re-running a recorded page is harmless: it republishes the
    same chunks (the ledger drops duplicates) and counts nothing twice."""
    requeued = []
    for check in store.due_stall_checks(isoformat(now)):
        announcement_id = check.announcement_id
        if check.status != "publishing":
            store.reschedule_stall_check(announcement_id, read_due_at=check.due_at, next_at=None)
            continue
        last = store.last_page(announcement_id)
        progress = parse_timestamp(last.planned_at) if last and last.planned_at else None
        if progress is not None and progress + STALL_AFTER > now:
            store.reschedule_stall_check(
                announcement_id, read_due_at=check.due_at, next_at=isoformat(progress + STALL_AFTER)
            )
            continue
        if check.recoveries >= MAX_RECOVERIES:
            logger.error("publishing is stuck", extra={"announcement_id": announcement_id})
            metrics.add_metric(name="PublishStalled", unit="Count", value=1)
            store.reschedule_stall_check(announcement_id, read_due_at=check.due_at, next_at=None)
            continue
        moved = store.reschedule_stall_check(
            announcement_id, read_due_at=check.due_at, next_at=isoformat(now + STALL_AFTER), recovery=True
        )
        if not moved:  # another sweep took it, or it just finished
            continue
        if last is None:
            bus.enqueue_page(announcement_id, 0, None)
        elif last.next_cursor is None:
            bus.enqueue_page(announcement_id, last.page, None)  # finish: fan out again, mark sent
        else:
            bus.enqueue_page(announcement_id, last.page + 1, last.next_cursor)
        logger.warning("re-queued a stalled announcement", extra={"announcement_id": announcement_id})
        requeued.append(announcement_id)
    return requeued
