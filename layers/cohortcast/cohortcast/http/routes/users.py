"""User routes (admin): profile, raw events, erasure."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel, Field

from cohortcast.clock import utcnow
from cohortcast.profiles import service
from cohortcast.services import erasure

router = Router()

UserId = Annotated[str, Path(min_length=1, max_length=256, description="the user's userId")]


class UserProfile(BaseModel):
    user_id: str | None
    anonymous_ids: list[str] = Field(description="anonymous ids merged into this user")
    traits: dict[str, Any]
    groups: dict[str, dict[str, Any]]
    first_seen: str | None
    last_seen: str | None
    behaviour: dict[str, dict[str, int]] = Field(description="event name → {UTC date: count}")
    created_at: str
    updated_at: str


class UserEvent(BaseModel):
    message_id: str
    type: str
    event: str | None
    timestamp: str
    received_at: str
    payload: dict[str, Any]


class UserEventsPage(BaseModel):
    events: list[UserEvent]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next (older) page")


class ErasureReport(BaseModel):
    user_id: str
    erased: dict[str, int]


@router.get("/v1/users/<userId>", summary="A user's profile", tags=["users"])
def get_user(userId: UserId) -> UserProfile:
    record = service.find_profile(userId)
    return UserProfile(
        user_id=record.user_id,
        anonymous_ids=service.anonymous_ids(record),
        traits=record.traits,
        groups=record.groups,
        first_seen=record.first_seen.isoformat() if record.first_seen else None,
        last_seen=record.last_seen.isoformat() if record.last_seen else None,
        behaviour=service.daily_counts_by_date(record.behaviour.hourly),
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


@router.get("/v1/users/<userId>/events", summary="A user's raw events, newest first", tags=["users"])
def get_user_events(
    userId: UserId,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> UserEventsPage:
    stored, next_cursor = service.user_events(userId, limit, cursor)
    return UserEventsPage(
        events=[
            UserEvent(
                message_id=e.message_id,
                type=e.type,
                event=e.event,
                timestamp=e.timestamp,
                received_at=e.received_at,
                payload=e.payload,
            )
            for e in stored
        ],
        next_cursor=next_cursor,
    )


@router.delete("/v1/users/<userId>", summary="Erase a user everywhere (GDPR)", tags=["users"])
def delete_user(userId: UserId) -> ErasureReport:
    erased = erasure.erase_user(userId, utcnow())
    return ErasureReport(
        user_id=erased.user_id,
        erased={
            "profiles": erased.profiles,
            "events": erased.events,
            "aliases": erased.aliases,
            "deliveries": erased.deliveries,
        },
    )
