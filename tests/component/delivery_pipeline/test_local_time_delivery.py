"""A `local_time` announcement: fanned out at once, each recipient deferred to 09:00 in their
zone (the settle job sends them then), counted pending meanwhile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cohortcast.storage import announcements as counters_store
from cohortcast.storage import delivery as store
from tests.component.delivery_pipeline.conftest import ANNOUNCEMENT_ID, NOW, SEGMENT, chunk_body
from tests.component.delivery_pipeline.test_crash_consistency import deliver, settle_and_deliver

ZONES = {
    "ny": "America/New_York",  # 07:00 at NOW (noon UTC): 09:00 today = 14:00 UTC
    "tokyo": "Asia/Tokyo",  # 21:00: tomorrow 09:00 = 00:00 UTC on the 24th
    "nowhere": None,  # workspace default (UTC here): 12:00, passed: tomorrow 09:00 UTC
    "bad": "Mars/Olympus",  # an invalid trait counts as the default
}


def test_each_recipient_gets_it_at_nine_in_their_own_timezone(world, ses):
    world.announcements[ANNOUNCEMENT_ID].local_time = "09:00"
    world.announcements[ANNOUNCEMENT_ID].created_at = "2026-11-23T12:00:00.000Z"
    people = {}
    for user_id, zone in ZONES.items():
        people[user_id] = {"email": f"{user_id}@example.net"}
        if zone:
            people[user_id]["timezone"] = zone
    world.add_users(people)
    counters_store.add_counts(ANNOUNCEMENT_ID, SEGMENT, {"planned": 4})

    deliver(world, chunk_body(list(ZONES)), ses, NOW)
    assert world.sent() == []
    due = {u: store.get_item(store.record_key(u, ANNOUNCEMENT_ID, "email"))["due_at"] for u in ZONES}
    assert due == {
        "ny": "2026-11-23T14:00:00.000Z",
        "tokyo": "2026-11-24T00:00:00.000Z",
        "nowhere": "2026-11-24T09:00:00.000Z",
        "bad": "2026-11-24T09:00:00.000Z",
    }
    total = counters_store.get_counts(ANNOUNCEMENT_ID)[0]
    assert total == {"planned": 4}  # all pending: deferred records count as pending

    sent_at: dict[str, datetime] = {}
    for hour in range(1, 24):  # the settle job every hour of the day (every 5 min in production)
        at = NOW + timedelta(hours=hour, minutes=1)
        before = set(world.sent_to())
        settle_and_deliver(world, ses, at)
        for address in set(world.sent_to()) - before:
            sent_at[address.split("@")[0]] = at
    assert {u: t.strftime("%d %H:%M") for u, t in sent_at.items()} == {
        "ny": "23 14:01",
        "tokyo": "24 00:01",
        "nowhere": "24 09:01",
        "bad": "24 09:01",
    }
    assert counters_store.get_counts(ANNOUNCEMENT_ID)[0] == {"planned": 4, "in_doubt": 0, "sent": 4}
    assert all(t.tzinfo == UTC for t in sent_at.values())
