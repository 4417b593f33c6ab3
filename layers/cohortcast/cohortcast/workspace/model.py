"""Workspace settings: the model, and its defaults from the template parameters."""

import re
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cohortcast.config import Settings

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
DEFAULT_LABELS = ("New", "Improvement", "Fix", "Announcement")
MAX_LABELS = 50
Label = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[^\x00-\x1f<>]+$")]
Origin = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^(\*|https?://[^/\s]+)$")]


class FrequencyCap(BaseModel):
    """At most `count` announcements per user in any trailing `days` days (critical ones bypass)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    count: int = Field(ge=1, le=1000)
    days: int = Field(ge=1, le=365)


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA timezone {value!r}") from exc
    return value


def _check_quiet_hours(value: tuple[str, str] | None) -> tuple[str, str] | None:
    if value is None:
        return None
    start, end = value
    for part in (start, end):
        if not _HHMM.match(part):
            raise ValueError(f"quiet hours must be local 'HH:MM' times, got {part!r}")
    if start == end:
        raise ValueError("quiet hours start and end must differ")
    return (start, end)


class WorkspaceSettings(BaseModel):
    """The effective settings of this workspace (one stack = one workspace)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sender: str = Field(
        default="cohortcast <no-reply@example.com>",
        min_length=3,
        max_length=320,
        description='From address of emails, e.g. "Acme <news@acme.test>"',
    )
    default_timezone: str = Field(default="UTC", description="IANA timezone for users without one")
    quiet_hours: tuple[str, str] | None = Field(
        default=None, description='local ["HH:MM", "HH:MM"] start/end when nothing is sent; null = none'
    )
    frequency_cap: FrequencyCap | None = Field(default=None, description="null = no cap")
    retention_days: int = Field(default=90, ge=1, le=3650, description="raw events and transitions")
    public_base_url: str = Field(
        default="", max_length=512, description="base of unsubscribe/preferences links (https://...)"
    )
    settle_minutes: int = Field(
        default=15, ge=1, le=24 * 60, description="how long an in-doubt delivery waits for SES's Send event"
    )
    labels: tuple[Label, ...] = Field(
        default=DEFAULT_LABELS, max_length=MAX_LABELS, description="the labels announcements may carry"
    )
    allowed_origins: tuple[Origin, ...] = Field(
        default=("*",),
        min_length=1,
        max_length=50,
        description='origins whose pages may call the feed API (CORS): "*" or "https://app.example.com"',
    )

    @field_validator("default_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return _check_timezone(value)

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: tuple[str, str] | None) -> tuple[str, str] | None:
        return _check_quiet_hours(value)

    @field_validator("labels", "allowed_origins")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(value))

    @field_validator("sender")
    @classmethod
    def _sender_has_address(cls, value: str) -> str:
        if "@" not in value or "\n" in value or "\r" in value:
            raise ValueError("sender must be an email address, optionally with a display name")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("public_base_url must start with https:// (or http:// locally)")
        return value.rstrip("/")


class SettingsUpdate(BaseModel):
    """`PUT /v1/settings`: the fields given replace the current ones (null turns an option off)."""

    model_config = ConfigDict(extra="forbid")

    sender: str | None = None
    default_timezone: str | None = None
    quiet_hours: tuple[str, str] | None = None
    frequency_cap: FrequencyCap | None = None
    retention_days: int | None = None
    public_base_url: str | None = None
    settle_minutes: int | None = None
    labels: list[str] | None = None
    allowed_origins: list[str] | None = None


# -- template defaults ---------------------------------------------------------------------------


def template_defaults(env: Settings) -> dict[str, Any]:
    """The template parameters' values (parsed once at cold start); unset ones keep the model's."""
    values: dict[str, Any] = {
        "quiet_hours": env.quiet_hours,
        "frequency_cap": FrequencyCap(count=env.frequency_cap[0], days=env.frequency_cap[1])
        if env.frequency_cap
        else None,
        "retention_days": env.event_retention_days,
    }
    if env.sender_address:
        values["sender"] = env.sender_address
    if env.default_timezone:
        values["default_timezone"] = env.default_timezone
    if env.public_base_url:
        values["public_base_url"] = env.public_base_url
    if env.settle_minutes is not None:
        values["settle_minutes"] = env.settle_minutes
    return values
