"""The one per-container memo: entries expire after their TTL, the least recently used go first."""

from cohortcast.cache import TTLCache


class FixedClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_is_a_hit_until_its_ttl_has_passed() -> None:
    clock = FixedClock()
    cache: TTLCache[str, int] = TTLCache(30, clock=clock)
    cache.put("a", 1)
    clock.now += 29.9
    assert cache.get("a") == (True, 1)
    clock.now += 0.1
    assert cache.get("a") == (False, None)
    assert len(cache) == 0


def test_a_ttl_given_on_put_overrides_the_default() -> None:
    clock = FixedClock()
    cache: TTLCache[str, int | None] = TTLCache(60, clock=clock)
    cache.put("unknown", None, ttl=5)
    clock.now += 5
    assert cache.get("unknown") == (False, None)


def test_get_or_load_loads_once_per_ttl_and_caches_none_too() -> None:
    clock = FixedClock()
    cache: TTLCache[str, None] = TTLCache(30, clock=clock)
    loads: list[str] = []
    for _ in range(3):
        assert cache.get_or_load("k", lambda: loads.append("k")) is None
    assert loads == ["k"]
    clock.now += 30
    cache.get_or_load("k", lambda: loads.append("k"))
    assert loads == ["k", "k"]


def test_the_least_recently_used_entry_is_dropped_past_max_entries() -> None:
    cache: TTLCache[str, int] = TTLCache(30, max_entries=2, clock=FixedClock())
    cache.put("a", 1)
    cache.put("b", 2)
    cache.get("a")
    cache.put("c", 3)
    assert cache.get("b") == (False, None)
    assert cache.get("a") == (True, 1) and cache.get("c") == (True, 3)


def test_clear_forgets_everything() -> None:
    cache: TTLCache[str, int] = TTLCache(30, clock=FixedClock())
    cache.put("a", 1)
    cache.clear()
    assert cache.get("a") == (False, None)
