"""Erasing a user from delivery: their records, preferences and entries in publish plans."""

from datetime import datetime
from typing import Any

from cohortcast.announcements.bus import page_of_chunk
from cohortcast.clock import isoformat
from cohortcast.delivery.email import email_hash
from cohortcast.storage import delivery as store
from cohortcast.storage.announcements import forget_recipient


def erase_deliveries(user_id: str, traits: dict[str, Any], *, now: datetime) -> int:
    """Delete the user's delivery records and preferences, and their entries in the publish plans
    of those deliveries. If they had opted out of all email, their address stays on the
    suppression list — as a hash only — so a re-import of the same person is not emailed again."""
    prefs = store.get_preferences(user_id)
    address = traits.get("email")
    if prefs.unsubscribed_all and isinstance(address, str) and "@" in address:
        store.put_suppressions(
            [{"email_hash": email_hash(address), "reason": "unsubscribed", "created_at": isoformat(now)}]
        )
    deliveries = store.user_deliveries(user_id)
    plans = {page for record in deliveries.records if (page := page_of_chunk(record.chunk_id or ""))}
    for announcement_id, page in sorted(plans):
        forget_recipient(announcement_id, page, user_id)
    return store.erase(deliveries)
