"""Delivery records expire after the workspace's retention, as PUT /v1/settings last set it."""

from __future__ import annotations

import boto3

from cohortcast.clock import isoformat
from cohortcast.delivery.chunk import Ports
from cohortcast.delivery.consumer import deliver_email_body
from cohortcast.workspace.model import SettingsUpdate
from cohortcast.workspace.service import get_workspace_settings, update_settings
from tests.component.delivery_pipeline.conftest import ANNOUNCEMENT_ID, NOW, chunk_body, no_sleep, users


def test_delivery_records_written_after_a_retention_change_expire_after_it(world, ses):
    update_settings(SettingsUpdate(retention_days=30), updated_at=isoformat(NOW))
    world.add_users(users(2))
    ports = Ports(settings=get_workspace_settings, announcement=world.announcements.__getitem__)

    deliver_email_body(chunk_body(["u0", "u1"]), now=NOW, ports=ports, ses=ses, sleep=no_sleep)

    items = boto3.resource("dynamodb").Table(world.aws.name("DataTable")).scan()["Items"]
    records = [i for i in items if i.get("kind") == "delivery" and i["announcement_id"] == ANNOUNCEMENT_ID]
    assert sorted(r["state"] for r in records) == ["sent", "sent"]
    assert {int(r["expires_at"]) for r in records} == {int(NOW.timestamp()) + 30 * 86400}
