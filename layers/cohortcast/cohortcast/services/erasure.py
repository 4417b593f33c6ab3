"""Erasure (GDPR): one user removed from every domain that holds something of them.

Cross-domain, so it sits above the domains it combines: profiles (the profile, merged
identities, aliases, raw events), segments (memberships and every transition naming them)
and delivery (delivery records, preferences, their entries in publish plans).
"""

from dataclasses import dataclass
from datetime import datetime

from cohortcast.delivery.erasure import erase_deliveries
from cohortcast.profiles import service as profile_service
from cohortcast.segments import service as segment_service


@dataclass(slots=True)
class Erasure:
    user_id: str
    profiles: int
    events: int
    aliases: int
    deliveries: int = 0


def erase_user(user_id: str, now: datetime) -> Erasure:
    """Remove the user everywhere. The profile goes last: until then a retry finds the user
    again and finishes the rest (every step is idempotent)."""
    record = profile_service.find_profile(user_id)
    events, aliases = profile_service.erase_history(record)
    for pk in (record.pk, *record.merged_keys):
        segment_service.erase_memberships(pk, now)
    # The address stays on the suppression list (hashed) if they opted out.
    deliveries = erase_deliveries(user_id, record.traits, now=now)
    profile_service.delete_profile(record)
    return Erasure(user_id=user_id, profiles=1, events=events, aliases=aliases, deliveries=deliveries)
