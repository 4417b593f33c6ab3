"""Every queue and topic message body, one pydantic model each: its producers build it, its
consumer parses it (producers sit in several domains, so the models live in the foundation).

`to_json` writes what the producers always sent: compact JSON, non-ASCII escaped, exactly the
fields the producer set (a recipient's `segment_id: null` stays; an unset `resume` is absent).
"""

import json
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

MESSAGE_VERSION = 1
MAX_RECIPIENTS = 50  # per fan-out chunk: the deliverer's batch


def to_json(message: BaseModel) -> str:
    return json.dumps(message.model_dump(mode="json", exclude_unset=True), separators=(",", ":"))


# -- the fan-out chunk: SNS topic (publish) and the settle job → email / SNS delivery queues ---


class FanoutRecipient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    user_id: str = Field(min_length=1, max_length=256)
    segment_id: str | None = Field(default=None, max_length=128)


class FanoutChunk(BaseModel):
    """Up to MAX_RECIPIENTS recipients of one announcement on one channel (v1)."""

    model_config = ConfigDict(extra="ignore")

    v: Literal[1]
    announcement_id: str = Field(min_length=1, max_length=128)
    channel: Literal["email", "push", "sms"]
    chunk_id: str = Field(min_length=1, max_length=256)
    recipients: list[FanoutRecipient] = Field(min_length=1, max_length=MAX_RECIPIENTS)
    resume: bool = False  # set by the settle job only


# -- the publish queue and one-time schedules → the publish function ---------------------------


class PageTask(BaseModel):
    """A publish-queue message: snapshot and fan out page `page`, starting at `cursor`."""

    model_config = ConfigDict(extra="ignore")

    v: int = MESSAGE_VERSION
    announcement_id: str = Field(min_length=1, max_length=64)
    page: int = Field(ge=0)
    cursor: str | None = None


class ScheduledStart(BaseModel):
    """What the one-time schedule sends the publish function."""

    model_config = ConfigDict(extra="ignore")

    v: int = MESSAGE_VERSION
    announcement_id: str = Field(min_length=1, max_length=64)


# -- segment jobs: the BackfillQueue → the backfill function ------------------------------------


class BackfillJob(BaseModel):
    """Evaluate the next page of one part of a (re)defined segment's backfill."""

    job: Literal["backfill"]
    segment_id: str
    job_id: str
    part: int
    cursor: str  # "" = the part's first page


class SweepJob(BaseModel):
    """The rest of a sweep that stopped at its budget: as of `now`, from these shards on."""

    job: Literal["sweep"]
    now: str
    shards: list[int] | None = None  # None = all of them
    start_key: dict[str, Any] | None = None


class ImportJob(BaseModel):
    """Apply chunk `chunk` of a CSV members import."""

    job: Literal["import"]
    segment_id: str
    job_id: str
    chunk: int


class PurgeJob(BaseModel):
    """Delete a deleted segment's remaining membership items."""

    job: Literal["purge"]
    segment_id: str


SegmentJob = Annotated[BackfillJob | SweepJob | ImportJob | PurgeJob, Field(discriminator="job")]
segment_job: TypeAdapter[SegmentJob] = TypeAdapter(SegmentJob)
SendJob = Callable[[SegmentJob], None]  # what queues a segment job (the BackfillQueue, or a test's list)
