"""Push and SMS through SNS: addresses from traits, once per recipient, in-doubt never re-sent."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest

from cohortcast.delivery.consumer import deliver_sns_body
from cohortcast.storage import delivery as store
from tests.component.delivery_pipeline.conftest import ANNOUNCEMENT_ID, NOW, chunk_body, no_sleep


class Recording:
    def __init__(self, sns):
        self.sns, self.requests = sns, []

    def publish(self, **request):
        self.requests.append(request)
        return self.sns.publish(**request)


@pytest.fixture
def sns(aws):
    return boto3.client("sns")


def test_push_goes_to_the_endpoint_trait_and_sms_to_the_phone_trait_once(world, sns):
    app = sns.create_platform_application(Name="app", Platform="GCM", Attributes={"PlatformCredential": "k"})
    endpoint = sns.create_platform_endpoint(PlatformApplicationArn=app["PlatformApplicationArn"], Token="t1")
    world.add_users(
        {
            "p": {"push_endpoint_arn": endpoint["EndpointArn"], "phone": "+14155550100"},
            "nothing": {"email": "n@example.net"},
        }
    )
    recording = Recording(sns)
    for channel in ("push", "sms", "push"):
        deliver_sns_body(
            chunk_body(["p", "nothing"], channel=channel),
            now=NOW,
            ports=world.ports(),
            sns=recording,
            sleep=no_sleep,
        )
    assert [("TargetArn" in r, "PhoneNumber" in r) for r in recording.requests] == [
        (True, False),
        (False, True),
    ]
    assert world.counters.get("sent") == 2
    assert world.counters.skipped() == {"no_address": 2}


def test_a_push_left_in_doubt_is_recorded_failed_unconfirmed_not_resent(world, sns):
    app = sns.create_platform_application(Name="app", Platform="GCM", Attributes={"PlatformCredential": "k"})
    endpoint = sns.create_platform_endpoint(PlatformApplicationArn=app["PlatformApplicationArn"], Token="t1")
    world.add_users({"p": {"push_endpoint_arn": endpoint["EndpointArn"]}})

    class Crash(Exception):
        pass

    class CrashAfterPublish(Recording):
        def publish(self, **request):
            super().publish(**request)
            raise Crash()

    crashing = CrashAfterPublish(sns)
    with pytest.raises(Crash):
        deliver_sns_body(
            chunk_body(["p"], channel="push"), now=NOW, ports=world.ports(), sns=crashing, sleep=no_sleep
        )
    recording = Recording(sns)
    later = NOW + timedelta(minutes=20)
    deliver_sns_body(
        chunk_body(["p"], channel="push", resume=True),
        now=later,
        ports=world.ports(),
        sns=recording,
        sleep=no_sleep,
    )
    assert recording.requests == []
    record = store.get_item(store.record_key("p", ANNOUNCEMENT_ID, "push"))
    assert record["state"] == "failed" and record["reason"] == "unconfirmed"
    assert world.counters.total == {"in_doubt": 0, "failed": 1}
