"""Queue and topic messages: one model, built by the producer, parsed by the consumer; the JSON
on the wire is what it always was."""

import json

import pytest
from pydantic import ValidationError

from cohortcast.announcements.bus import fanout_messages
from cohortcast.delivery.chunk import parse_chunk
from cohortcast.messages import (
    MAX_RECIPIENTS,
    BackfillJob,
    ImportJob,
    PageTask,
    PurgeJob,
    ScheduledStart,
    SweepJob,
    segment_job,
    to_json,
)


def test_a_fanout_chunk_is_compact_ascii_json_with_each_recipients_segment_even_when_none() -> None:
    (message,) = fanout_messages("ann_1", ["email"], 0, [("zoë", "seg_1"), ("u2", None)])

    assert message["Message"] == (
        '{"v":1,"announcement_id":"ann_1","channel":"email","chunk_id":"ann_1:0:0:email",'
        '"recipients":[{"user_id":"zo\\u00eb","segment_id":"seg_1"},{"user_id":"u2","segment_id":null}]}'
    )
    assert message["MessageAttributes"] == {"channel": {"DataType": "String", "StringValue": "email"}}


def test_the_deliverer_parses_what_the_publisher_fans_out() -> None:
    recipients = [(f"u{i}", "seg_1") for i in range(MAX_RECIPIENTS + 1)]
    first, second = fanout_messages("ann_1", ["sms"], 3, recipients)

    chunk = parse_chunk(first["Message"])
    assert (chunk.channel, chunk.chunk_id, len(chunk.recipients), chunk.resume) == (
        "sms",
        "ann_1:3:0:sms",
        50,
        False,
    )
    assert [r.user_id for r in parse_chunk(second["Message"]).recipients] == ["u50"]


def test_publish_queue_and_schedule_messages_round_trip() -> None:
    task = PageTask(v=1, announcement_id="ann_1", page=2, cursor=None)
    assert to_json(task) == '{"v":1,"announcement_id":"ann_1","page":2,"cursor":null}'
    assert PageTask.model_validate_json(to_json(task)) == task
    start = ScheduledStart.model_validate(json.loads('{"v": 1, "announcement_id": "ann_1"}'))
    assert start.announcement_id == "ann_1"


def test_segment_jobs_are_written_as_before_and_parsed_by_kind() -> None:
    wire = [
        (
            BackfillJob(job="backfill", segment_id="seg_1", job_id="j1", part=2, cursor=""),
            '{"job":"backfill","segment_id":"seg_1","job_id":"j1","part":2,"cursor":""}',
        ),
        (
            SweepJob(job="sweep", now="2026-11-24T09:00:00.000Z", shards=[3, 4], start_key=None),
            '{"job":"sweep","now":"2026-11-24T09:00:00.000Z","shards":[3,4],"start_key":null}',
        ),
        (
            ImportJob(job="import", segment_id="seg_1", job_id="j2", chunk=0),
            '{"job":"import","segment_id":"seg_1","job_id":"j2","chunk":0}',
        ),
        (PurgeJob(job="purge", segment_id="seg_1"), '{"job":"purge","segment_id":"seg_1"}'),
    ]
    for message, body in wire:
        assert to_json(message) == body
        assert segment_job.validate_json(body) == message


def test_an_unknown_segment_job_is_refused_when_parsed() -> None:
    with pytest.raises(ValidationError):
        segment_job.validate_json('{"job":"reticulate","segment_id":"seg_1"}')
