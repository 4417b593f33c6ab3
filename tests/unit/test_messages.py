"""Queue and topic messages: one model, built by the producer, parsed by the consumer; the JSON
on the wire is what it always was."""

import json

from cohortcast.announcements.bus import fanout_messages
from cohortcast.delivery.chunk import parse_chunk
from cohortcast.messages import MAX_RECIPIENTS, PageTask, ScheduledStart, to_json


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
