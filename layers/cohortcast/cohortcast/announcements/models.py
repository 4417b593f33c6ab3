"""Announcement models: the request at the API edge, the stored announcement, its counts."""

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Channel = Literal["email", "push", "sms", "in_app"]
FANOUT_CHANNELS = ("email", "push", "sms")  # delivered per recipient; in_app is read live from the feed
Priority = Literal["normal", "critical"]
Status = Literal["scheduled", "publishing", "sent", "cancelled"]
SKIP_REASONS = (
    "no_address",
    "invalid_address",
    "suppressed",
    "unsubscribed",
    "frequency_cap",
    "quiet_hours",
    "read_in_app",
    "cancelled",
)

MAX_SEGMENTS = 20
MAX_LABELS = 10
_DURATION = re.compile(r"^\s*(\d{1,4})\s*(m|h|d)\s*$")
_DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
MAX_UNREAD_WAIT = timedelta(days=30)
HttpUrl = Annotated[str, Field(max_length=2048, pattern=r"^https?://[^\s<>\"]+$")]


def parse_duration(text: str) -> timedelta:
    """ "48h" → 48 hours; "30m", "7d". ValueError otherwise."""
    found = _DURATION.match(text)
    if not found:
        raise ValueError(f"a duration like 30m, 48h or 7d, got {text!r}")
    return timedelta(**{_DURATION_UNITS[found.group(2)]: int(found.group(1))})


class Audience(BaseModel):
    """Who receives it: everyone, members of any of `segments`, or profiles matching `rule`;
    minus the members of `exclude_segments`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    everyone: bool = Field(default=False, description="every identified user (shown on the public changelog)")
    segments: list[str] = Field(default=[], max_length=MAX_SEGMENTS, description="any-of, in priority order")
    exclude_segments: list[str] = Field(default=[], max_length=MAX_SEGMENTS)
    rule: dict[str, Any] | None = Field(default=None, description="an inline segment rule (see /v1/segments)")

    @field_validator("segments", "exclude_segments")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if any(not isinstance(v, str) or not v or len(v) > 128 for v in value):
            raise ValueError("segment ids must be non-empty strings")
        return list(dict.fromkeys(value))

    @property
    def public(self) -> bool:
        """Shown on the public changelog: meant for everyone, no one excluded."""
        return self.everyone and not self.exclude_segments


class CallToAction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = Field(min_length=1, max_length=60)
    url: HttpUrl


class InAppFields(BaseModel):
    """How an announcement shows in the in-app feed and the public changelog."""

    labels: list[str] = Field(default=[], max_length=MAX_LABELS, description="from the workspace's labels")
    image_url: HttpUrl | None = None
    cta: CallToAction | None = None
    pinned: bool = Field(default=False, description="listed before the others in the feed")
    visible_until: datetime | None = Field(default=None, description="UTC; the feed hides it afterwards")
    email_if_unread_after: str | None = Field(
        default=None,
        description='e.g. "48h": the email goes only to audience members who have not read it in-app by then',
    )


class AnnouncementRequest(InAppFields):
    """`POST /v1/announcements`."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(max_length=300, description="email subject; may use {{ user.trait }} variables")
    body: str = Field(
        max_length=100_000, description="Markdown with {{ user.trait | default(...) }} variables"
    )
    audience: Audience | None = None
    channels: list[Channel] = Field(default=["email"], min_length=1, max_length=4)
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

    @field_validator("channels", "labels")
    @classmethod
    def _unique(cls, value: list[Any]) -> list[Any]:
        return list(dict.fromkeys(value))

    @field_validator("email_if_unread_after")
    @classmethod
    def _wait(cls, value: str | None) -> str | None:
        if value is not None and not timedelta(minutes=1) <= parse_duration(value) <= MAX_UNREAD_WAIT:
            raise ValueError("between 1m and 30d")
        return value

    @model_validator(mode="after")
    def _email_if_unread_needs_both_channels(self) -> "AnnouncementRequest":
        if self.email_if_unread_after is not None and not {"email", "in_app"} <= set(self.channels):
            raise ValueError("email_if_unread_after needs both the email and in_app channels")
        return self


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
    labels: list[str] = []
    image_url: str | None = None
    cta: CallToAction | None = None
    pinned: bool = False
    visible_until: str | None = Field(default=None, description="ISO-8601 UTC; hidden from the feed after")
    email_if_unread_after: str | None = None

    @property
    def fanout_channels(self) -> list[str]:
        return [c for c in self.channels if c in FANOUT_CHANNELS]

    @property
    def unread_wait(self) -> timedelta | None:
        return parse_duration(self.email_if_unread_after) if self.email_if_unread_after else None


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


REACTION_KINDS = ("up", "down", "love")


class InAppCounts(BaseModel):
    """What users did with an in-app post; each user counted once, under one segment.
    read ≤ seen; reactions by kind add up to the users who reacted."""

    seen: int = 0
    read: int = 0
    reactions: dict[str, int] = Field(default_factory=lambda: dict.fromkeys(REACTION_KINDS, 0))
    comments: int = 0

    @classmethod
    def from_counters(cls, raw: dict[str, int]) -> "InAppCounts":
        return cls(
            seen=int(raw.get("in_app.seen", 0)),
            read=int(raw.get("in_app.read", 0)),
            reactions={kind: int(raw.get(f"in_app.reaction.{kind}", 0)) for kind in REACTION_KINDS},
            comments=int(raw.get("in_app.comments", 0)),
        )
