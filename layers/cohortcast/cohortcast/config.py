"""Environment settings, parsed once per process (cold start) into a model."""

import os
import re
from collections.abc import Mapping
from functools import cache
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

_CAP = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*d\s*$")


class Settings(BaseModel):
    """The function's environment variables, named like the fields (any case), validated once.

    What pydantic-settings' BaseSettings did here, without its import cost at every cold start
    (~50 ms: dotenv, CLI and cloud-secret sources we never used).
    """

    model_config = ConfigDict(extra="ignore")

    profiles_table: str = Field(description="profiles and anonymous-id aliases (stream source)")
    events_table: str = Field(description="raw events with a TTL")
    data_table: str = Field(description="keys, segments, memberships, announcements, ledger, ...")
    idempotency_table: str = ""
    event_retention_days: int = Field(default=90, ge=1, le=3650)
    # announcements: the fan-out bus, the publish queue and one-time schedules (empty where unused)
    fanout_topic_arn: str = ""
    publish_queue_url: str = ""
    schedule_group: str = "default"
    scheduler_role_arn: str = ""
    publish_function_arn: str = ""
    publish_dlq_arn: str = ""
    backfill_queue_url: str = Field(default="", description="segment jobs: backfills, sweep continuations")
    # delivery
    ses_configuration_set: str = ""
    # Either a Secrets Manager secret (ARN or name) or an SSM SecureString/String parameter name.
    unsubscribe_secret_arn: str = ""
    unsubscribe_secret_parameter: str = ""
    identity_secret_arn: str = ""  # in-app feed user hashes (cohortcast.auth.identity)
    api_endpoint: str = ""  # the HTTP API's URL: links' base when the workspace sets none
    email_queue_url: str = ""
    sns_delivery_queue_url: str = ""
    # workspace settings' template defaults ("" = the workspace model's own default);
    # `cohortcast.workspace` validates them with what PUT /v1/settings stores over them
    sender_address: str = ""
    default_timezone: str = ""
    quiet_hours: tuple[str, str] | None = Field(default=None, description='"21:00-08:00"; "" = none')
    frequency_cap: tuple[int, int] | None = Field(default=None, description='"3/7d" (count, days); "" = none')
    public_base_url: str = ""
    settle_minutes: int | None = None

    @field_validator("event_retention_days", "settle_minutes", mode="before")
    @classmethod
    def _default_when_empty(cls, value: Any, info: ValidationInfo) -> Any:
        # an empty template parameter means "not set": the default applies
        return cls.model_fields[info.field_name].default if value == "" else value

    @field_validator("quiet_hours", mode="before")
    @classmethod
    def _quiet_hours(cls, value: Any) -> Any:
        """ "21:00-08:00" → ("21:00", "08:00"); "" → None."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if not text:
            return None
        start, sep, end = text.partition("-")
        if not sep:
            raise ValueError(f"QUIET_HOURS must look like 21:00-08:00, got {text!r}")
        return (start.strip(), end.strip())

    @field_validator("frequency_cap", mode="before")
    @classmethod
    def _frequency_cap(cls, value: Any) -> Any:
        """ "3/7d" → (3, 7); "" → None."""
        if not isinstance(value, str):
            return value
        if not value.strip():
            return None
        found = _CAP.match(value)
        if not found:
            raise ValueError(f"FREQUENCY_CAP must look like 3/7d, got {value!r}")
        return (int(found.group(1)), int(found.group(2)))

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Self:
        source = os.environ if environ is None else environ
        by_name = {name.lower(): value for name, value in source.items()}
        return cls.model_validate({f: by_name[f] for f in cls.model_fields if f in by_name})


@cache
def get_settings() -> Settings:
    return Settings.from_environment()
