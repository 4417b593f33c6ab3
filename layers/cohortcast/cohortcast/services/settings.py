"""Changing workspace settings where a change reaches into another domain.

Lowering `retention_days` below a saved segment's event window would make that segment
stop evaluating (its rule no longer fits the raw events kept), so such a change is refused
with the segments it would break.
"""

from cohortcast.errors import Unprocessable
from cohortcast.storage import segments as segment_store
from cohortcast.workspace.model import SettingsUpdate, WorkspaceSettings
from cohortcast.workspace.service import retention_days, update_settings


def change_settings(update: SettingsUpdate, *, updated_at: str) -> WorkspaceSettings:
    if update.retention_days is not None:
        too_long = _segments_beyond(update.retention_days)
        if too_long:
            raise Unprocessable(
                f"retention_days {update.retention_days} is shorter than the event windows of "
                f"{len(too_long)} segment(s): shorten or delete them first",
                [{"pointer": "/retention_days", "segment_id": sid, "message": why} for sid, why in too_long],
            )
    return update_settings(update, updated_at=updated_at)


def _segments_beyond(new_retention_days: int) -> list[tuple[str, str]]:
    """(segment id, why) of each dynamic segment that fits today's retention but not this one."""
    from cohortcast.segments.rules import parse_rule  # lazy: the rule models (~130 ms) only for this check

    current, broken = retention_days(), []
    for definition in segment_store.list_definitions():
        if definition.kind != "dynamic" or definition.rule is None:
            continue
        try:
            parse_rule(definition.rule, max_window_days=current)
        except Unprocessable:
            continue  # broken already, for its own reasons: not this change's doing
        try:
            parse_rule(definition.rule, max_window_days=new_retention_days)
        except Unprocessable as err:
            broken.append((definition.segment_id, err.message))
    return broken
