"""Environment settings, parsed once per process (cold start) into a model."""

import os
from functools import cache
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field


class EnvironmentModel(BaseModel):
    """A settings model read from environment variables named like its fields (any case).

    What pydantic-settings' BaseSettings did here, without its import cost at every cold start
    (~50 ms: dotenv, CLI and cloud-secret sources we never used).
    """

    model_config = ConfigDict(extra="ignore")

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Self:
        source = os.environ if environ is None else environ
        by_name = {name.lower(): value for name, value in source.items()}
        values: dict[str, Any] = {f: by_name[f] for f in cls.model_fields if f in by_name}
        return cls.model_validate(values)


class Settings(EnvironmentModel):
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


@cache
def get_settings() -> Settings:
    return Settings.from_environment()
