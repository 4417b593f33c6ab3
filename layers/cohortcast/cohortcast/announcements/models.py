"""Announcement models: the request at the API edge, the stored announcement, its counts."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Channel = Literal["email", "push", "sms"]
Priority = Literal["normal", "critical"]
Status = Literal["scheduled", "publishing", "sent", "cancelled"]
SKIP_REASONS = (
    "no_address",
    "invalid_address",
    "suppressed",
    "unsubscribed",
    "frequency_cap",
    "quiet_hours",
    "cancelled",
)

MAX_SEGMENTS = 20


class Audience(BaseModel):
    """Who receives it: members of any of `segments`, or profiles matching `rule`; minus exclusions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    segments: list[str] = Field(default=[], max_length=MAX_SEGMENTS, description="any-of, in priority order")
    exclude_segments: list[str] = Field(default=[], max_length=MAX_SEGMENTS)
    rule: dict[str, Any] | None = Field(default=None, description="an inline segment rule (see /v1/segments)")

    @field_validator("segments", "exclude_segments")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if any(not isinstance(v, str) or not v or len(v) > 128 for v in value):
            raise ValueError("segment ids must be non-empty strings")
        return list(dict.fromkeys(value))


class AnnouncementRequest(BaseModel):
    """`POST /v1/announcements`."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(max_length=300, description="email subject; may use {{ user.trait }} variables")
    body: str = Field(
        max_length=100_000, description="Markdown with {{ user.trait | default(...) }} variables"
    )
    audience: Audience | None = None
    channels: list[Channel] = Field(default=["email"], min_length=1, max_length=3)
    topic: str | None = Field(
        default=None, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="for preferences"
    )
    priority: Priority = "normal"
    send_at: datetime | None = Field(default=None, description="UTC; in the future. Omit to send now")
    local_time: str | None = Field(
        default=None,
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="'HH:MM': send at this time in each recipient's `timezone` trait (workspace "
        "default without one); tomorrow where it has already passed. Not with send_at",
    )

    @field_validator("channels")
    @classmethod
    def _unique_channels(cls, value: list[Channel]) -> list[Channel]:
        return list(dict.fromkeys(value))


class Announcement(BaseModel):
    """What the deliverer renders (cached per container) and what the API shows."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    body: str
    topic: str | None = None
    channels: list[Channel]
    priority: Priority = "normal"
    status: Status
    audience: Audience
    send_at: str | None = Field(default=None, description="ISO-8601 UTC when scheduled")
    local_time: str | None = Field(default=None, description="'HH:MM' in each recipient's timezone")
    created_at: str
    published_at: str | None = Field(default=None, description="when publishing started")
    completed_at: str | None = Field(default=None, description="when the last recipient was fanned out")
    cancelled_at: str | None = None
    pages: int | None = Field(default=None, description="audience pages fanned out, when complete")


class Counts(BaseModel):
    """One delivery per (recipient, channel). planned = sent + skipped + failed + in_doubt + pending."""

    planned: int = 0
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    bounced: int = 0
    complained: int = 0
    failed: int = 0
    in_doubt: int = 0
    skipped: dict[str, int] = Field(default_factory=lambda: dict.fromkeys(SKIP_REASONS, 0))
    skipped_total: int = 0
    pending: int = 0

    @classmethod
    def from_counters(cls, raw: dict[str, int]) -> "Counts":
        skipped = {reason: int(raw.get(f"skipped.{reason}", 0)) for reason in SKIP_REASONS}
        for name, value in raw.items():  # reasons added later by the deliverer still show
            if name.startswith("skipped.") and name[8:] not in skipped:
                skipped[name[8:]] = int(value)
        values = {name: int(raw.get(name, 0)) for name in cls.model_fields if name in raw}
        skipped_total = sum(skipped.values())
        planned = values.get("planned", 0)
        done = values.get("sent", 0) + skipped_total + values.get("failed", 0) + values.get("in_doubt", 0)
        return cls(**values, skipped=skipped, skipped_total=skipped_total, pending=planned - done)
