"""The per-container API-key cache: known keys for a minute, unknown keys for seconds, bounded."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cohortcast.auth.keys import (
    KNOWN_KEY_SECONDS,
    UNKNOWN_KEY_SECONDS,
    KeyCache,
    create_key,
    hash_key,
    verify_key,
)
from cohortcast.storage import aws as storage
from cohortcast.storage import keys as item_keys

CREATED_AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


class FixedClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


def _revoke(table: str, plaintext: str) -> None:
    storage.table(table).delete_item(
        Key={"pk": item_keys.api_key_pk(hash_key(plaintext)), "sk": item_keys.API_KEY_SK}
    )


def test_a_known_key_is_served_from_the_cache_for_a_minute_then_read_again(aws, clock) -> None:
    cache = KeyCache(clock=clock)
    plaintext, record = create_key("write", "web", CREATED_AT)
    assert verify_key(plaintext, cache) == record
    _revoke(aws.name("DataTable"), plaintext)

    clock.advance(KNOWN_KEY_SECONDS - 1)
    assert verify_key(plaintext, cache) == record  # still cached: no lookup
    clock.advance(1)
    assert verify_key(plaintext, cache) is None  # expired: the revocation is seen


def test_an_unknown_key_is_remembered_only_for_a_few_seconds(aws, clock) -> None:
    cache = KeyCache(clock=clock)
    plaintext = "ccw_created-just-after-the-first-call"
    assert verify_key(plaintext, cache) is None
    _, record = create_key("write", "mobile", CREATED_AT, plaintext=plaintext)

    clock.advance(UNKNOWN_KEY_SECONDS - 1)
    assert verify_key(plaintext, cache) is None
    clock.advance(1)
    assert verify_key(plaintext, cache) == record


def test_the_cache_keeps_at_most_max_entries_dropping_the_least_recently_used(aws, clock) -> None:
    cache = KeyCache(max_entries=2, clock=clock)
    first, first_record = create_key("write", "first", CREATED_AT)
    second, _ = create_key("write", "second", CREATED_AT)
    third, third_record = create_key("admin", "third", CREATED_AT)
    verify_key(first, cache)
    verify_key(second, cache)
    verify_key(first, cache)  # first is now more recently used than second
    verify_key(third, cache)  # evicts second
    assert len(cache) == 2
    for plaintext in (first, second, third):
        _revoke(aws.name("DataTable"), plaintext)

    assert verify_key(first, cache) == first_record  # still cached
    assert verify_key(third, cache) == third_record  # still cached
    assert verify_key(second, cache) is None  # evicted, read again: revoked


def test_a_stream_of_random_keys_does_not_grow_the_cache_past_its_bound(aws, clock) -> None:
    cache = KeyCache(max_entries=50, clock=clock)
    for n in range(200):
        assert verify_key(f"ccw_random-guess-{n}", cache) is None
    assert len(cache) == 50


def test_expired_entries_do_not_count_as_hits(clock) -> None:
    cache = KeyCache(clock=clock)
    cache.put("digest", None)
    assert cache.get("digest") == (True, None)
    clock.advance(UNKNOWN_KEY_SECONDS)
    assert cache.get("digest") == (False, None)
    assert len(cache) == 0
