"""Fixtures for the delivery pipeline: moto (template resources), a fixed clock, stand-in ports.

The announcement and workspace settings are stand-ins with the publish side's contract
(`get_announcement`, `get_workspace_settings`), so these tests pin the delivery side's
behaviour on their own; the counters are the real DynamoDB items, written with the ledger.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ANNOUNCEMENT_ID = "ann_01JDELIVERY0000000000000001"
SEGMENT = "seg_01JSEGMENT00000000000000001"


@pytest.fixture(autouse=True)
def clock(clock):
    """The suite's fixed clock, moved to this package's NOW (handlers read it; the logic takes `now`)."""
    clock.move_to(NOW)
    return clock


@dataclass
class Cap:
    count: int
    days: int


@dataclass
class StandInSettings:
    sender: str = "Acme <news@example.com>"
    default_timezone: str = "UTC"
    quiet_hours: tuple[str, str] | None = None
    frequency_cap: Cap | None = None
    retention_days: int = 90
    public_base_url: str = "https://acme.example"
    settle_minutes: int = 15


@dataclass
class StandInAnnouncement:
    id: str = ANNOUNCEMENT_ID
    title: str = "Hello {{ user.first_name | default('there') }}"
    body: str = "New **reports** are here.\n\n[Open](https://acme.example/reports)"
    topic: str | None = "product-updates"
    channels: tuple[str, ...] = ("email",)
    priority: str = "normal"
    status: str = "publishing"
    send_at: str | None = None
    created_at: str = "2026-11-23T11:00:00.000Z"
    local_time: str | None = None


@dataclass
class Counters:
    """The counters as stored (written in the ledger's own transactions), summed over the
    world's announcements."""

    announcement_ids: Any = None  # a callable: the ids to sum over

    def _all(self) -> list[tuple[dict[str, int], dict[str, dict[str, int]]]]:
        from cohortcast.storage.announcements import get_counts

        return [get_counts(announcement_id) for announcement_id in self.announcement_ids()]

    @property
    def total(self) -> dict[str, int]:
        summed: dict[str, int] = {}
        for total, _ in self._all():
            for name, value in total.items():
                summed[name] = summed.get(name, 0) + value
        return summed

    @property
    def by_segment(self) -> dict[str, dict[str, int]]:
        summed: dict[str, dict[str, int]] = {}
        for _, by_segment in self._all():
            for segment_id, counters in by_segment.items():
                bucket = summed.setdefault(segment_id, {})
                for name, value in counters.items():
                    bucket[name] = bucket.get(name, 0) + value
        return summed

    def get(self, name: str) -> int:
        return self.total.get(name, 0)

    def skipped(self) -> dict[str, int]:
        return {n.split(".", 1)[1]: v for n, v in self.total.items() if n.startswith("skipped.") and v}

    def settled_total(self) -> int:
        return sum(
            v
            for n, v in self.total.items()
            if n in ("sent", "failed", "in_doubt") or n.startswith("skipped.")
        )


@dataclass
class World:
    aws: Any
    settings: StandInSettings
    announcements: dict[str, StandInAnnouncement]
    counters: Counters

    def ports(self) -> Any:
        from cohortcast.delivery.chunk import Ports

        return Ports(
            settings=lambda: self.settings,
            announcement=lambda announcement_id: self.announcements[announcement_id],
        )

    def add_users(self, users: dict[str, dict[str, Any]]) -> None:
        from cohortcast.storage import keys
        from cohortcast.storage import profiles as profile_store
        from cohortcast.storage.profiles import ProfileRecord

        for user_id, traits in users.items():
            record = ProfileRecord(pk=keys.profile_pk(user_id=user_id), user_id=user_id, anonymous_id=None)
            record.traits = dict(traits)
            record.created_at = record.updated_at = "2026-11-01T00:00:00.000Z"
            profile_store.save(record)

    def sent(self) -> list[Any]:
        """Messages moto's SES accepted, oldest first."""
        from moto.backends import get_backend

        return list(get_backend("ses")["123456789012"]["us-east-1"].sent_messages)

    def sent_to(self) -> list[str]:
        # moto adds the To header's addresses to the destinations: count each message once
        return sorted(sorted(set(message.destinations))[0] for message in self.sent())


def chunk_body(
    user_ids: list[str],
    *,
    announcement_id: str = ANNOUNCEMENT_ID,
    channel: str = "email",
    segment_id: str | None = SEGMENT,
    chunk_id: str = "c1",
    **extra: Any,
) -> str:
    return json.dumps(
        {
            "v": 1,
            "announcement_id": announcement_id,
            "channel": channel,
            "chunk_id": chunk_id,
            "recipients": [{"user_id": u, "segment_id": segment_id} for u in user_ids],
            **extra,
        }
    )


def users(count: int, prefix: str = "u") -> dict[str, dict[str, Any]]:
    return {
        f"{prefix}{i}": {"email": f"{prefix}{i}@example.net", "first_name": f"N{i}"} for i in range(count)
    }


@pytest.fixture
def world(aws) -> World:
    from cohortcast.delivery import settings
    from cohortcast.services import ports

    settings.reset()
    ports._announcements.clear()
    announcements = {ANNOUNCEMENT_ID: StandInAnnouncement()}
    return World(
        aws=aws,
        settings=StandInSettings(),
        announcements=announcements,
        counters=Counters(lambda: list(announcements)),
    )


@pytest.fixture
def ses(aws) -> Any:
    return boto3.client("sesv2")


def no_sleep(_seconds: float) -> None:
    return None
