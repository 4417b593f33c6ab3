"""The profile as the segment engine reads it: plain data, no pydantic, built once per user."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class ProfileView:
    """What rules are evaluated over.

    `hourly` maps an event name to {epoch_hour: count} (UTC hour buckets, see
    `cohortcast.profiles.behaviour.epoch_hour`), pruned to the raw-event retention window. Track
    events count under their `event` name, page views under "$page", screens under
    "$screen". `counters` has the same shape, keyed by the id of a filtered counter
    (an event name plus a `where` condition on properties, registered by segments).
    `segments` is the set of segment ids the user is currently a member of.
    """

    user_id: str | None
    anonymous_id: str | None = None
    traits: dict[str, Any] = field(default_factory=dict)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    hourly: dict[str, dict[int, int]] = field(default_factory=dict)
    counters: dict[str, dict[int, int]] = field(default_factory=dict)
    segments: frozenset[str] = frozenset()

    @property
    def profile_id(self) -> str:
        return self.user_id if self.user_id is not None else f"anonymous:{self.anonymous_id}"
