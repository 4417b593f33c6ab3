"""Environment settings, parsed once per process (cold start) into a model."""

from functools import cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

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
    return Settings()  # type: ignore[call-arg]
