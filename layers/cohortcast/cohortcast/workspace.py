"""Workspace settings: template parameters (env) overridden at run time by `PUT /v1/settings`.

`get_workspace_settings()` is what every function reads (cached ~30 s per container);
the overrides live in one DataTable item (`SETTINGS` / `WORKSPACE`).
"""

import os
import re
import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cohortcast.errors import Unprocessable
from cohortcast.storage import workspace as store

CACHE_SECONDS = 30.0
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_CAP = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*d\s*$")


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

    @field_validator("default_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return _check_timezone(value)

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: tuple[str, str] | None) -> tuple[str, str] | None:
        return _check_quiet_hours(value)

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


# -- environment defaults ----------------------------------------------------------------------


def parse_quiet_hours(text: str) -> tuple[str, str] | None:
    """ "21:00-08:00" → ("21:00", "08:00"); "" → None."""
    text = text.strip()
    if not text:
        return None
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError(f"QUIET_HOURS must look like 21:00-08:00, got {text!r}")
    return (start.strip(), end.strip())


def parse_frequency_cap(text: str) -> FrequencyCap | None:
    """ "3/7d" → FrequencyCap(count=3, days=7); "" → None."""
    if not text.strip():
        return None
    found = _CAP.match(text)
    if not found:
        raise ValueError(f"FREQUENCY_CAP must look like 3/7d, got {text!r}")
    return FrequencyCap(count=int(found.group(1)), days=int(found.group(2)))


def defaults_from_env(env: dict[str, str] | None = None) -> dict[str, Any]:
    env = dict(os.environ if env is None else env)
    values: dict[str, Any] = {}
    if env.get("SENDER_ADDRESS"):
        values["sender"] = env["SENDER_ADDRESS"]
    if env.get("DEFAULT_TIMEZONE"):
        values["default_timezone"] = env["DEFAULT_TIMEZONE"]
    if "QUIET_HOURS" in env:
        values["quiet_hours"] = parse_quiet_hours(env["QUIET_HOURS"])
    if "FREQUENCY_CAP" in env:
        values["frequency_cap"] = parse_frequency_cap(env["FREQUENCY_CAP"])
    if env.get("EVENT_RETENTION_DAYS"):
        values["retention_days"] = int(env["EVENT_RETENTION_DAYS"])
    if env.get("PUBLIC_BASE_URL"):
        values["public_base_url"] = env["PUBLIC_BASE_URL"]
    if env.get("SETTLE_MINUTES"):
        values["settle_minutes"] = int(env["SETTLE_MINUTES"])
    return values


def _effective(overrides: dict[str, Any]) -> WorkspaceSettings:
    return WorkspaceSettings(**{**defaults_from_env(), **overrides})


# -- the cached read every function uses --------------------------------------------------------

_cache: tuple[float, WorkspaceSettings] | None = None


def get_workspace_settings() -> WorkspaceSettings:
    """Effective settings: env defaults + the stored overrides; re-read at most every 30 s."""
    global _cache
    now = time.monotonic()
    if _cache is not None and now - _cache[0] < CACHE_SECONDS:
        return _cache[1]
    overrides = store.get_overrides()
    try:
        settings = _effective(overrides)
    except ValidationError:
        # A stored override that no longer validates (e.g. a removed timezone) must not stop sends.
        settings = _effective({})
    _cache = (now, settings)
    return settings


def reset_cache() -> None:
    global _cache
    _cache = None


def update_settings(update: SettingsUpdate, *, updated_at: str) -> WorkspaceSettings:
    """Merge the given fields into the stored overrides; 422 when the result is invalid."""
    given = update.model_dump(exclude_unset=True, mode="json")
    overrides = {**store.get_overrides(), **given}
    try:
        settings = _effective(overrides)
    except ValidationError as exc:
        details = [
            {"pointer": "/" + "/".join(str(p) for p in err["loc"]), "message": err["msg"]}
            for err in exc.errors()
        ]
        raise Unprocessable(
            f"invalid settings: {details[0]['pointer']}: {details[0]['message']}", details
        ) from exc
    store.put_overrides(overrides, updated_at=updated_at)
    reset_cache()
    return settings
