"""CSV imports of static members: a job with progress, batched writes, exact counts, resumable."""

import pytest

from bench.aws_counter import counting
from cohortcast.messages import SegmentJob
from cohortcast.segments import bulk, jobs
from cohortcast.storage import segments as segment_store
from local.moto_patches import fast_dynamodb

from .conftest import NOW

ROWS = 5_000
BAD_LINES = [3, 100, 202]  # 1-based CSV lines (the header is line 1) left without an id
SMALL = 300  # rows for the tests of resuming and counting, with small chunks (below)


def _csv(rows: int = ROWS, first: int = 0) -> str:
    lines = ["user_id,email"]
    for i in range(first, first + rows):
        lines.append(f"user-{i},u{i}@example.com")
    for line in BAD_LINES:
        lines.insert(line - 1, ",nobody@example.com")
    return "\n".join(lines) + "\n"


@pytest.fixture(autouse=True)
def scaled_moto():
    """moto deep-copies the whole table once per action of a transaction (local/moto_patches.py);
    thousands of 97-action transactions need the same answers without those copies."""
    undo = fast_dynamodb()
    yield
    undo()


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 100 ids and jobs from 50: the same paths as 5,000 rows, a fifth of the time."""
    monkeypatch.setattr(bulk, "CHUNK_IDS", 100)
    monkeypatch.setattr(bulk, "INLINE_MEMBERS", 50)


class Queue:
    """The BackfillQueue: messages the API and the jobs send, run one at a time."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from cohortcast.http.routes import segments as routes

        self.messages: list[SegmentJob] = []
        monkeypatch.setattr(routes, "send_job", self.messages.append)
        monkeypatch.setattr(jobs, "send_job", self.messages.append)

    def run_one(self, *, redelivered: bool = False) -> str:
        return jobs.run_job(self.messages.pop(0), NOW, redelivered=redelivered)

    def run_all(self) -> list[str]:
        outcomes = []
        while self.messages:
            outcomes.append(self.run_one())
        return outcomes


def _static(api) -> str:
    status, created = api("POST", "/v1/segments", {"name": "Imported", "members": []})
    assert status == 201, created
    return created["segment_id"]


def _import(api, segment_id: str, body: str) -> tuple[int, dict]:
    return api("POST", f"/v1/segments/{segment_id}/members.csv", body, content_type="text/csv")


def _paged_members(api, segment_id: str) -> list[str]:
    users, cursor = [], None
    while True:
        query = "limit=1000" + (f"&cursor={cursor}" if cursor else "")
        status, page = api("GET", f"/v1/segments/{segment_id}/members", query=query)
        assert status == 200, page
        users += [m["user_id"] for m in page["members"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return users


def test_a_5000_row_csv_is_imported_by_a_job_with_progress_in_batched_writes(api, monkeypatch):
    queue = Queue(monkeypatch)
    segment_id = _static(api)
    with counting() as counts:
        # When a 5,000-row CSV with three bad rows is posted
        status, accepted = _import(api, segment_id, _csv())
        # Then the API answers 202 at once: a running job, the bad rows named by line
        assert status == 202, accepted
        assert accepted["members_import"]["state"] == "running"
        assert accepted["members_import"]["total"] == ROWS
        assert [r["line"] for r in accepted["rejected"]] == BAD_LINES
        assert len(queue.messages) == 1
        # And after the first chunk the segment shows how far the job got
        assert queue.run_one() == "next"
        _, shown = api("GET", f"/v1/segments/{segment_id}")
        progress = shown["members_import"]
        assert progress["state"] == "running" and progress["processed"] == bulk.CHUNK_IDS
        assert shown["size"] == bulk.CHUNK_IDS
        assert queue.run_all()[-1] == "finished"
    # Then every member is in, counted once, and the job says so
    _, shown = api("GET", f"/v1/segments/{segment_id}")
    assert shown["size"] == ROWS
    assert shown["members_import"] | {"started_at": None, "updated_at": None, "finished_at": None} == {
        "state": "done",
        "job_id": accepted["members_import"]["job_id"],
        "total": ROWS,
        "processed": ROWS,
        "added": ROWS,
        "unchanged": 0,
        "rejected": 3,
        "rejected_rows": accepted["rejected"],
        "started_at": None,
        "updated_at": None,
        "finished_at": None,
    }
    members = _paged_members(api, segment_id)
    assert len(members) == len(set(members)) == shown["size"]
    # And the writes were batched: at most one AWS request per 10 members, all told
    assert counts.total_requests() / ROWS <= 0.1, counts.requests
    # And the stored chunks of ids are gone
    with pytest.raises(LookupError):
        segment_store.import_chunk(segment_id, accepted["members_import"]["job_id"], 0)


def test_an_import_resumes_after_a_crash_mid_chunk_and_counts_each_member_once(
    api, monkeypatch, small_chunks
):
    queue = Queue(monkeypatch)
    segment_id = _static(api)
    _import(api, segment_id, _csv(SMALL))
    commit = segment_store.commit_static_changes
    calls = {"n": 0}

    def crash_on_the_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("the function died here")
        return commit(*args, **kwargs)

    monkeypatch.setattr(segment_store, "commit_static_changes", crash_on_the_third)
    message = queue.messages[0].model_copy()
    # When the job's first message dies in the middle of its chunk
    with pytest.raises(RuntimeError):
        queue.run_one()
    _, shown = api("GET", f"/v1/segments/{segment_id}")
    # Then what was committed is visible and exact: 2 transactions of 24
    assert shown["members_import"]["processed"] == shown["size"] == 2 * 24
    # And when SQS delivers the message again, the job resumes where it stopped
    queue.messages.insert(0, message)
    assert queue.run_one(redelivered=True) == "next"
    queue.run_all()
    _, shown = api("GET", f"/v1/segments/{segment_id}")
    assert shown["members_import"]["state"] == "done"
    assert shown["members_import"]["added"] == shown["size"] == SMALL
    assert shown["members_import"]["unchanged"] == 0
    assert len(_paged_members(api, segment_id)) == SMALL


def test_a_lost_next_message_is_sent_again_when_the_chunk_is_redelivered(api, monkeypatch, small_chunks):
    queue = Queue(monkeypatch)
    segment_id = _static(api)
    _import(api, segment_id, _csv(SMALL))
    message = queue.messages[0].model_copy()

    def lost(_message):
        raise ConnectionError("SQS unreachable after the chunk committed")

    monkeypatch.setattr(jobs, "send_job", lost)
    with pytest.raises(ConnectionError):
        queue.run_one()
    monkeypatch.setattr(jobs, "send_job", queue.messages.append)
    queue.messages.insert(0, message)
    assert queue.run_one(redelivered=True) == "resent"
    assert queue.messages[0].chunk == 1
    queue.run_all()
    _, shown = api("GET", f"/v1/segments/{segment_id}")
    assert shown["size"] == shown["members_import"]["added"] == SMALL


def test_a_duplicate_copy_of_an_import_message_writes_nothing_twice(api, monkeypatch, small_chunks):
    queue = Queue(monkeypatch)
    segment_id = _static(api)
    _import(api, segment_id, _csv(SMALL))
    queue.messages.append(queue.messages[0].model_copy())  # SQS delivered the first message twice
    outcomes = queue.run_all()
    assert outcomes.count("duplicate") == 1 and outcomes[-1] == "finished"
    _, shown = api("GET", f"/v1/segments/{segment_id}")
    assert shown["size"] == shown["members_import"]["added"] == SMALL


def test_an_import_counts_existing_members_and_repeated_ids_as_unchanged(api, monkeypatch, small_chunks):
    queue = Queue(monkeypatch)
    segment_id = _static(api)
    status, _ = api("POST", f"/v1/segments/{segment_id}/members", {"add": [f"user-{i}" for i in range(10)]})
    assert status == 200
    body = _csv(SMALL) + "user-5\nuser-299\n"
    status, accepted = _import(api, segment_id, body)
    assert status == 202, accepted
    queue.run_all()
    _, shown = api("GET", f"/v1/segments/{segment_id}")
    assert shown["members_import"]["added"] == SMALL - 10
    assert shown["members_import"]["unchanged"] == 12
    assert shown["size"] == SMALL == len(_paged_members(api, segment_id))


def test_a_second_import_while_one_runs_is_409(api, monkeypatch, small_chunks):
    queue = Queue(monkeypatch)
    segment_id = _static(api)
    assert _import(api, segment_id, _csv(SMALL))[0] == 202
    status, body = _import(api, segment_id, _csv(SMALL, first=SMALL))
    assert status == 409 and body["error"]["code"] == "import_running"
    queue.run_all()
    assert _import(api, segment_id, _csv(SMALL, first=SMALL))[0] == 202


def test_small_csvs_are_still_applied_within_the_request(api, small_chunks):
    segment_id = _static(api)
    status, report = _import(api, segment_id, _csv(rows=bulk.INLINE_MEMBERS))
    assert status == 200, report
    assert report["added"] == bulk.INLINE_MEMBERS and len(report["rejected"]) == len(BAD_LINES)
    _, shown = api("GET", f"/v1/segments/{segment_id}")
    assert shown["size"] == report["added"] and shown["members_import"] is None
