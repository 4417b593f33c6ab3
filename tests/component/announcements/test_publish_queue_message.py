"""The publish queue's page task: the body, group and deduplication id the publish function and
FIFO deduplication rely on."""

import boto3

from cohortcast.announcements import bus
from cohortcast.messages import PageTask


def test_a_page_task_is_compact_json_grouped_by_announcement_and_deduplicated_by_page(aws) -> None:
    bus.enqueue_page("ann_01JWIRE", 3, "opaque/cursör")

    (message,) = boto3.client("sqs").receive_message(
        QueueUrl=aws.url("PublishQueue"), AttributeNames=["All"], MaxNumberOfMessages=10
    )["Messages"]

    assert (
        message["Body"] == '{"v":1,"announcement_id":"ann_01JWIRE","page":3,"cursor":"opaque/curs\\u00f6r"}'
    )
    assert message["Attributes"]["MessageGroupId"] == "ann_01JWIRE"
    assert message["Attributes"]["MessageDeduplicationId"] == "ann_01JWIRE:3"
    task = PageTask.model_validate_json(message["Body"])  # what the publish function does
    assert (task.announcement_id, task.page, task.cursor) == ("ann_01JWIRE", 3, "opaque/cursör")
