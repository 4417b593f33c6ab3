"""Storing messages: profiles, aggregates, dedupe, identity merges, crash safety (moto)."""

from datetime import UTC, datetime

import pytest

from cohortcast.ingest import service
from cohortcast.ingest.service import Batch, ingest
from cohortcast.profiles.behaviour import epoch_hour
from cohortcast.profiles.service import find_profile, user_events
from cohortcast.services.erasure import erase_user
from cohortcast.storage import events as event_store
from cohortcast.storage import profiles as profile_store

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
HOUR = epoch_hour(NOW)


def _ingest(*items, received_at=NOW, retention_days=90):
    return ingest(Batch(items=list(items)), received_at=received_at, retention_days=retention_days)


def _track(user, event, message_id, **extra):
    return {"type": "track", "userId": user, "event": event, "messageId": message_id, **extra}


def test_track_counts_into_hourly_aggregates_and_last_seen(aws):
    _ingest(_track("u1", "login", "m1"), _track("u1", "login", "m2"), _track("u1", "report_viewed", "m3"))
    profile = find_profile("u1")
    assert profile.behaviour.hourly == {"login": {HOUR: 2}, "report_viewed": {HOUR: 1}}
    assert profile.last_seen == NOW and profile.first_seen == NOW


def test_retried_message_is_stored_and_counted_once(aws):
    first = _ingest(_track("u1", "login", "m1"))
    retry = _ingest(_track("u1", "login", "m1"), received_at=NOW.replace(minute=5))
    assert (first.duplicates, retry.duplicates) == (0, 1)
    assert find_profile("u1").behaviour.hourly == {"login": {HOUR: 1}}
    events, _ = user_events("u1", 50, None)
    assert [e.message_id for e in events] == ["m1"]


def test_crash_between_event_write_and_profile_write_counts_once_on_retry(aws, monkeypatch):
    # Given the profile write fails once, after the raw events were written
    real_save = profile_store.save
    calls = {"n": 0}

    def crash_once(record):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("function crashed")
        real_save(record)

    monkeypatch.setattr(profile_store, "save", crash_once)
    with pytest.raises(RuntimeError):
        _ingest(_track("u1", "login", "m1", timestamp="2026-11-23T11:00:00Z"))
    # When the client retries the same message
    _ingest(_track("u1", "login", "m1", timestamp="2026-11-23T11:00:00Z"))
    # Then it is counted once (in the hour it happened) and stored once
    assert find_profile("u1").behaviour.hourly == {"login": {HOUR - 1: 1}}
    assert len(user_events("u1", 50, None)[0]) == 1


def test_concurrent_writer_is_detected_and_reapplied(aws, monkeypatch):
    _ingest(_track("u1", "login", "m1"))
    real_get_many = profile_store.get_many

    def stale_read(pks):
        found = real_get_many(pks)
        # another request writes the profile between our read and our write
        monkeypatch.setattr(service.profile_store, "get_many", real_get_many)
        _ingest(_track("u1", "login", "other"))
        return found

    monkeypatch.setattr(service.profile_store, "get_many", stale_read)
    _ingest(_track("u1", "login", "m2"))
    assert find_profile("u1").behaviour.hourly == {"login": {HOUR: 3}}


def test_identify_merges_traits_shallowly(aws):
    _ingest({"type": "identify", "userId": "u1", "traits": {"plan": "free", "company": {"size": 10}}})
    _ingest({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}})
    assert find_profile("u1").traits == {"plan": "pro", "company": {"size": 10}}


def test_anonymous_history_merges_into_the_user_on_identify(aws):
    # Given an anonymous visitor with history
    _ingest({"type": "page", "anonymousId": "anon-1", "name": "Pricing", "timestamp": "2026-11-20T09:00:00Z"})
    _ingest({"type": "identify", "anonymousId": "anon-1", "traits": {"utm": "ad"}})
    # When they sign up and are identified
    _ingest({"type": "identify", "userId": "u1", "anonymousId": "anon-1", "traits": {"email": "a@x.test"}})
    # Then the user's profile has the anonymous history, and later anonymous events land on the user
    _ingest({"type": "track", "anonymousId": "anon-1", "event": "clicked"})
    profile = find_profile("u1")
    assert profile.traits == {"utm": "ad", "email": "a@x.test"}
    assert profile.first_seen == datetime(2026, 11, 20, 9, tzinfo=UTC)
    assert set(profile.behaviour.hourly) == {"$page", "clicked"}
    assert profile_store.get("A#anon-1") is None
    assert len(user_events("u1", 50, None)[0]) == 4
    assert list(event_store.all_for("A#anon-1")) == []


def test_alias_merges_a_previous_user_id(aws):
    _ingest(_track("old-id", "login", "m1"))
    _ingest({"type": "alias", "previousId": "old-id", "userId": "new-id"})
    assert find_profile("new-id").behaviour.hourly == {"login": {HOUR: 1}}
    assert find_profile("old-id").pk == "U#new-id"  # the old id leads to the merged user


def test_aggregates_outside_retention_are_not_kept(aws):
    _ingest(_track("u1", "login", "m1", timestamp="2026-01-01T00:00:00Z"), retention_days=30)
    profile = find_profile("u1")
    assert profile.behaviour.hourly == {}
    assert profile.first_seen == datetime(2026, 1, 1, tzinfo=UTC)


def test_batch_with_bad_items_stores_the_good_ones(aws):
    result = _ingest(_track("u1", "login", "m1"), {"type": "track", "userId": "u1"}, "junk")
    assert result.accepted == 1
    assert [(r["index"], r["code"]) for r in result.rejected] == [
        (1, "missing_event"),
        (2, "invalid_message"),
    ]


def test_erasure_removes_profile_events_and_aliases(aws):
    _ingest({"type": "identify", "userId": "u1", "anonymousId": "anon-1"}, _track("u1", "login", "m1"))
    erasure = erase_user("u1", NOW)
    assert (erasure.events, erasure.aliases) == (2, 1)
    assert profile_store.get("U#u1") is None
    assert profile_store.resolve_aliases(["A#anon-1"]) == {}
