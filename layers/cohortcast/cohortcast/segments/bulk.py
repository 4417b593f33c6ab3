"""Static members in bulk: batched, exactly counted writes, and CSV imports run as a job.

Every change of a static segment's members goes through `_apply`: a window of ids costs one
BatchGetItem of aliases and one of current memberships, then one transaction per
CHANGES_PER_TRANSACTION changes that writes the memberships, their transitions, the users'
state items and the segment's `size` together, so `size` always equals the member count.

A CSV larger than INLINE_MEMBERS ids becomes a job: its ids are stored in chunk items before
the API answers 202, and each BackfillQueue message `{"job": "import"}` applies one chunk.
The job's cursor (chunk, offset) lives in the definition's `members_import` map and moves in
the same transaction as the members it covers, so a crash or a redelivered message resumes
exactly where the last transaction left off, and counts are never doubled.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ulid import ULID

from cohortcast.clock import isoformat
from cohortcast.errors import Conflict, NotFound
from cohortcast.messages import ImportJob, SendJob
from cohortcast.observability import logger
from cohortcast.storage import keys
from cohortcast.storage import profiles as profile_store
from cohortcast.storage import segments as segment_store
from cohortcast.storage.segments import CHANGES_PER_TRANSACTION, BulkCancelled, Change, ImportStep
from cohortcast.workspace import service as workspace

INLINE_MEMBERS = 1_000  # a CSV with at most this many ids is applied within the request
WINDOW = 96  # ids read together (BatchGetItem takes 100 keys): 4 full transactions
CHUNK_IDS = 1_000  # ids per stored chunk and per job message: ~65 requests, a few seconds
CHUNK_BYTES = 300_000  # and a chunk item stays well under DynamoDB's 400 KB
CHUNK_DAYS = 7  # chunk items expire (TTL) if a job never finishes
STALLED_AFTER = timedelta(minutes=30)  # a running import that long without progress can be replaced
REJECTED_KEPT = 100  # bad rows shown on the segment (the 202 answer lists them all)
ATTEMPTS = 5  # per run, while concurrent changes of the same members keep cancelling it


@dataclass(slots=True)
class MembersReport:
    added: int = 0
    removed: int = 0
    unchanged: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    job: dict[str, Any] | None = None  # the import job's progress when it runs in the background


def write_members(segment_id: str, add: list[str], remove: list[str], now: datetime) -> MembersReport:
    """Add, then remove, static members within the request (adds first, as listed)."""
    report = MembersReport()
    for kind, ids in (("enter", add), ("exit", remove)):
        try:
            changed, unchanged = _apply(segment_id, ids, kind, now, None)
        except BulkCancelled as err:  # without a job, only the definition's existence is checked
            raise NotFound(f"segment {segment_id} was deleted meanwhile", code="segment_not_found") from err
        report.unchanged += unchanged
        if kind == "enter":
            report.added += changed
        else:
            report.removed += changed
    return report


@dataclass(slots=True)
class _Cursor:
    job_id: str
    chunk: int
    offset: int
    length: int  # ids in this chunk


def _apply(
    segment_id: str, ids: list[str], kind: str, now: datetime, cursor: _Cursor | None
) -> tuple[int, int]:
    """(changed, unchanged) for `ids`, window by window; with a cursor, ids start at its offset.

    Raises BulkCancelled(progress_moved=True) when the segment was deleted or another worker
    moved the job's cursor: nothing more is written then.
    """
    changed = unchanged = 0
    at = isoformat(now)
    for start in range(0, len(ids), WINDOW):
        window = ids[start : start + WINDOW]
        own = [keys.profile_pk(user_id=user_id) for user_id in window]
        aliases = profile_store.resolve_aliases(own)
        pks = [aliases.get(pk, pk) for pk in own]
        members = segment_store.existing_members(segment_id, pks)
        for group_start, group in _groups(pks, members, kind):
            position = None if cursor is None else cursor.offset + start + group_start
            done = _commit(segment_id, group, members, kind, at, now, cursor, position)
            changed += done
            unchanged += len(group) - done
    return changed, unchanged


def _groups(pks: list[str], members: set[str], kind: str) -> list[tuple[int, list[str]]]:
    """Consecutive runs of the window, each with at most CHANGES_PER_TRANSACTION changes.

    A run lists every pk it covers; those already in the wanted state (or repeated) are
    `unchanged` when it commits. Runs are consecutive so a job's cursor can move over each.
    """
    groups: list[tuple[int, list[str]]] = []
    current: list[str] = []
    current_start, changes = 0, 0
    seen: set[str] = set()
    for index, pk in enumerate(pks):
        is_change = pk not in seen and ((pk in members) != (kind == "enter"))
        seen.add(pk)
        if is_change and changes == CHANGES_PER_TRANSACTION:
            groups.append((current_start, current))
            current, current_start, changes = [], index, 0
        current.append(pk)
        changes += is_change
    if current:
        groups.append((current_start, current))
    return groups


def _commit(
    segment_id: str,
    group: list[str],
    members: set[str],
    kind: str,
    at: str,
    now: datetime,
    cursor: _Cursor | None,
    position: int | None,
) -> int:
    """Commit one run; returns how many of its pks changed. When a membership changed since
    it was read (a concurrent add or remove), the run is read again and retried."""
    step = None
    if cursor is not None and position is not None:
        end = position + len(group)
        step = ImportStep(
            cursor.job_id,
            cursor.chunk,
            position,
            cursor.chunk + 1 if end >= cursor.length else cursor.chunk,
            0 if end >= cursor.length else end,
            at,
        )
    for _ in range(ATTEMPTS):
        wanted = dict.fromkeys(pk for pk in group if (pk in members) != (kind == "enter"))
        if not wanted and step is None:
            return 0
        reason = "added" if kind == "enter" else "removed"
        changes = [Change(segment_id, pk, kind, at, reason) for pk in wanted]
        try:
            segment_store.commit_static_changes(
                segment_id, changes, workspace.expires_at(now), unchanged=len(group) - len(changes), step=step
            )
            return len(changes)
        except BulkCancelled as cancelled:
            if cancelled.progress_moved:
                raise
            members = segment_store.existing_members(segment_id, group)
    raise RuntimeError(f"static members of {segment_id} kept changing under {ATTEMPTS} attempts")


# -- CSV import jobs ---------------------------------------------------------------------------


def _chunks(ids: list[str]) -> list[list[str]]:
    chunks: list[list[str]] = [[]]
    size = 0
    for user_id in ids:
        length = len(user_id.encode()) + 4
        if len(chunks[-1]) >= CHUNK_IDS or size + length > CHUNK_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(user_id)
        size += length
    return chunks


def _message(segment_id: str, job_id: str, chunk: int) -> ImportJob:
    return ImportJob(job="import", segment_id=segment_id, job_id=job_id, chunk=chunk)


def start_import(
    segment_id: str, ids: list[str], rejected: list[dict[str, Any]], now: datetime, send: SendJob
) -> dict[str, Any]:
    """Store the ids, record the job on the segment and queue its first chunk; returns the progress."""
    job_id = str(ULID())
    at = isoformat(now)
    chunks = _chunks(ids)
    progress: dict[str, Any] = {
        "state": "running",
        "job_id": job_id,
        "started_at": at,
        "updated_at": at,
        "total": len(ids),
        "processed": 0,
        "added": 0,
        "unchanged": 0,
        "rejected": len(rejected),
        "rejected_rows": rejected[:REJECTED_KEPT],
        "chunks": len(chunks),
        "chunk": 0,
        "offset": 0,
    }
    expires_at = int(now.timestamp()) + CHUNK_DAYS * 86400
    segment_store.put_import_chunks(segment_id, job_id, chunks, expires_at)
    try:
        segment_store.start_import(segment_id, progress, isoformat(now - STALLED_AFTER))
    except segment_store.ImportRunning as err:
        segment_store.delete_import_chunks(segment_id, job_id, len(chunks))
        raise Conflict(
            f"an import into {segment_id} is running; wait until GET /v1/segments/{segment_id} "
            "shows members_import.state done",
            code="import_running",
        ) from err
    send(_message(segment_id, job_id, 0))
    return progress


def process_import(message: ImportJob, now: datetime, send: SendJob, *, redelivered: bool = False) -> str:
    """Apply one chunk of an import job; returns what happened (for logs and tests)."""
    segment_id, job_id, number = message.segment_id, message.job_id, message.chunk
    definition = segment_store.get_definition(segment_id)
    if definition is None:
        return "deleted"
    progress = definition.members_import
    if progress.get("job_id") != job_id:
        return "superseded"
    if progress.get("state") != "running":
        return "done"
    chunk, chunks = int(progress["chunk"]), int(progress["chunks"])
    if chunk >= chunks:  # the last chunk was applied before a crash: only the finish is left
        _finish(segment_id, job_id, chunks, now)
        return "finished"
    if chunk != number:
        # A redelivery after the next message was due: send it again if the crash came first.
        if redelivered and chunk > number:
            send(_message(segment_id, job_id, chunk))
            return "resent"
        return "duplicate"
    ids = segment_store.import_chunk(segment_id, job_id, chunk)
    offset = int(progress["offset"])
    try:
        _apply(segment_id, ids[offset:], "enter", now, _Cursor(job_id, chunk, offset, len(ids)))
    except BulkCancelled:
        return "duplicate"  # another copy of this message moved the cursor (or the segment is gone)
    logger.info("import chunk", extra={"segment_id": segment_id, "chunk": chunk, "of": chunks})
    if chunk + 1 < chunks:
        send(_message(segment_id, job_id, chunk + 1))
        return "next"
    _finish(segment_id, job_id, chunks, now)
    return "finished"


def _finish(segment_id: str, job_id: str, chunks: int, now: datetime) -> None:
    # Chunks first: a crash in between leaves a job that only needs finishing (see above).
    segment_store.delete_import_chunks(segment_id, job_id, chunks)
    segment_store.finish_import(segment_id, job_id, isoformat(now))
