"""The effective workspace settings every function reads (cached per container), and changing them.

The overrides live in one DataTable item (`SETTINGS` / `WORKSPACE`); under them are the
template parameters, parsed once at cold start (`cohortcast.config`).
"""

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from cohortcast.cache import TTLCache
from cohortcast.config import get_settings
from cohortcast.errors import Unprocessable
from cohortcast.storage import workspace as store
from cohortcast.workspace.model import SettingsUpdate, WorkspaceSettings, template_defaults

CACHE_SECONDS = 30.0
_cache: TTLCache[str, WorkspaceSettings] = TTLCache(CACHE_SECONDS, max_entries=1)


def _effective(overrides: dict[str, Any]) -> WorkspaceSettings:
    return WorkspaceSettings(**{**template_defaults(get_settings()), **overrides})


def _load() -> WorkspaceSettings:
    try:
        return _effective(store.get_overrides())
    except ValidationError:
        # A stored override that no longer validates (e.g. a removed timezone) must not stop sends.
        return _effective({})


def get_workspace_settings() -> WorkspaceSettings:
    """Effective settings: template defaults + the stored overrides; re-read at most every 30 s."""
    return _cache.get_or_load("settings", _load)


def retention_days() -> int:
    """The one retention: raw events, transitions, size history, delivery records, rule windows."""
    return get_workspace_settings().retention_days


def expires_at(moment: datetime) -> int:
    """The TTL (epoch seconds) of something recorded at `moment`: kept for the retention."""
    return int(moment.timestamp()) + retention_days() * 86400


def reset_cache() -> None:
    _cache.clear()


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
