"""Backfill: evaluate one new or edited segment over every profile, one page per queue message.

The job is split into PARTS parallel scan segments; each message scans one page of one part
and carries the part's cursor (the scan's ExclusiveStartKey). Progress lives in the
definition's `backfill` map, advanced with a condition on the part's cursor, so a redelivered
message re-does idempotent writes and then stops instead of counting twice. An edit starts a
new job id; messages of the old job are dropped.
"""

from datetime import datetime
from typing import Any

from ulid import ULID

from cohortcast.clock import isoformat
from cohortcast.messages import BackfillJob, SendJob
from cohortcast.observability import logger
from cohortcast.profiles.record import view as profile_view
from cohortcast.segments import counters, evaluation
from cohortcast.segments.registry import Registry, get_registry, invalidate
from cohortcast.storage import cursors
from cohortcast.storage import profiles as profile_store
from cohortcast.storage import segments as segment_store
from cohortcast.storage.profiles import ProfileRecord
from cohortcast.storage.segments import SegmentDefinition
from cohortcast.workspace import service as workspace

PARTS = 4
PAGE_SIZE = 200
# A profile written by ingest while its counters are recounted is read and counted again.
_COUNTER_SAVE_ATTEMPTS = 5
DONE = "done"


def start(definition: SegmentDefinition, now: datetime, send: SendJob, *, reason: str = "backfill") -> dict:
    """Mark a new job on the definition and queue the first page of each part."""
    job_id = str(ULID())
    backfill = {
        "state": "running",
        "job_id": job_id,
        "reason": reason,
        "started_at": isoformat(now),
        "processed": 0,
        "matched": 0,
        "parts": {str(p): {"cursor": "", "processed": 0, "matched": 0} for p in range(PARTS)},
    }
    segment_store.start_backfill(definition.segment_id, definition.version, backfill)
    definition.backfill = backfill
    for part in range(PARTS):
        send(_message(definition.segment_id, job_id, part, ""))
    return backfill


def _message(segment_id: str, job_id: str, part: int, cursor: str) -> BackfillJob:
    return BackfillJob(job="backfill", segment_id=segment_id, job_id=job_id, part=part, cursor=cursor)


def _encode_key(key: dict[str, Any] | None) -> str:
    if not key:
        return DONE
    return cursors.encode(key)


def _decode_key(cursor: str) -> dict[str, Any] | None:
    return cursors.decode_object(cursor) if cursor else None


def process_page(message: BackfillJob, now: datetime, send: SendJob, *, redelivered: bool = False) -> str:
    """Handle one backfill message; returns what happened (for logs and tests)."""
    segment_id, job_id, part = message.segment_id, message.job_id, str(message.part)
    current = segment_store.get_definition(segment_id)
    if current is None or current.backfill.get("job_id") != job_id:
        return "superseded"
    progress = current.backfill["parts"].get(part) or {}
    if progress.get("cursor") != message.cursor:
        # This page was done before (a redelivery); if the crash came before the next message
        # went out, send it again — a duplicate copy (first delivery) just stops here.
        if redelivered and progress.get("cursor") not in (DONE, None):
            send(_message(segment_id, job_id, int(part), progress["cursor"]))
            return "resent"
        return "duplicate"
    if current.kind != "dynamic":
        return "static"
    registry = _registry_with(segment_id, current.version)
    if segment_id not in registry.compiled:
        raise RuntimeError(f"segment {segment_id} has a rule that does not compile: {registry.broken}")
    compiled = registry.compiled[segment_id]
    records, last_key = profile_store.scan_page(
        PAGE_SIZE, _decode_key(message.cursor), part=int(part), parts=PARTS
    )
    specs = compiled.counter_specs()
    if specs:
        records = [_with_counters(record, specs, now) for record in records]
    reason = current.backfill.get("reason", "backfill")
    summary = evaluation.evaluate_records(records, registry, now, reason, only={segment_id}, guarded=True)
    matched_here = sum(1 for r in records if compiled.matches(profile_view(r), now))
    cursor = _encode_key(last_key)
    backfill = segment_store.advance_backfill(
        segment_id,
        job_id,
        part,
        message.cursor,
        cursor,
        int(progress.get("processed", 0)) + len(records),
        int(progress.get("matched", 0)) + matched_here,
    )
    if backfill is None:
        return "duplicate"
    logger.info(
        "backfill page", extra={"segment_id": segment_id, "part": part, "evaluated": summary.evaluated}
    )
    if cursor != DONE:
        send(_message(segment_id, job_id, int(part), cursor))
        return "next"
    if all(p.get("cursor") == DONE for p in backfill["parts"].values()):
        finish(segment_id, job_id, backfill, now)
        return "finished"
    return "part_done"


def _registry_with(segment_id: str, version: int) -> Registry:
    """The cached registry, reloaded if it predates this version of the segment."""
    registry = get_registry()
    known = registry.definitions.get(segment_id)
    if known is None or known.version != version:
        invalidate()
        registry = get_registry()
    return registry


def finish(segment_id: str, job_id: str, backfill: dict[str, Any], now: datetime) -> None:
    """Every part is done: mark the job done (idempotent).

    The size needs no recount: it moves in each membership's transaction. (A recount here raced
    with real-time changes committed between its count and its write.)
    """
    parts = backfill["parts"].values()
    segment_store.finish_backfill(
        segment_id,
        job_id,
        {
            "state": "done",
            "finished_at": isoformat(now),
            "processed": sum(int(p.get("processed", 0)) for p in parts),
            "matched": sum(int(p.get("matched", 0)) for p in parts),
        },
    )


def _with_counters(record: ProfileRecord, specs: list[Any], now: datetime) -> ProfileRecord:
    """Count the rule's filtered counters from the profile's raw events, and save them.

    Recounted even when the profile has the counter already: ingest starts one as soon as its
    definitions cache sees the segment, which can be before the backfill reaches the profile,
    and then it lacks the earlier events. Only profiles that performed the event are read. If
    ingest writes the profile meanwhile, the profile is read and counted again (its raw events
    are stored before the profile), so no event is lost or counted twice.
    """
    retention = workspace.retention_days()
    for _ in range(_COUNTER_SAVE_ATTEMPTS):
        if not counters.needs_events(record, specs):
            return record  # a counter of an event never performed reads as zero
        counts = counters.count_from_events(record, specs, now, retention)
        if all(record.behaviour.counters.get(cid, {}) == hours for cid, hours in counts.items()):
            return record
        record.behaviour.counters.update({cid: hours for cid, hours in counts.items() if hours})
        for cid in [cid for cid, hours in counts.items() if not hours]:
            record.behaviour.counters.pop(cid, None)
        try:
            profile_store.save(record)
            return record
        except profile_store.StaleProfile:
            record = profile_store.get(record.pk) or record
    return record
