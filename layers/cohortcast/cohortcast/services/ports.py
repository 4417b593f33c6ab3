"""The real ports, composed once for the handlers: what a domain needs from the others,
handed to it instead of imported by it (the deliverer reads announcements, which use it)."""

from typing import Any

from cohortcast.announcements.service import get_announcement
from cohortcast.cache import TTLCache
from cohortcast.delivery.chunk import Ports
from cohortcast.workspace.service import get_workspace_settings

ANNOUNCEMENT_CACHE_SECONDS = 30.0  # a cancellation is seen within this long
_announcements: TTLCache[str, Any] = TTLCache(ANNOUNCEMENT_CACHE_SECONDS, max_entries=64)


def _cached_announcement(announcement_id: str) -> Any:
    return _announcements.get_or_load(announcement_id, lambda: get_announcement(announcement_id))


def delivery_ports() -> Ports:
    """The chunk pipeline's ports: workspace settings, and announcements cached per container."""
    return Ports(settings=get_workspace_settings, announcement=_cached_announcement)
