"""The one per-container memo: bounded, entries expire after a TTL, clock injectable for tests.

Lambda containers live for minutes to hours, so whatever is read often and changes rarely
(settings, segment definitions, API keys, announcements, secrets) is kept here for a short
while instead of being read on every invocation.
"""

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable


class TTLCache[K: Hashable, V]:
    """key → value for `ttl` seconds (per entry if given on put); least recently used dropped first."""

    def __init__(
        self, ttl: float, *, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> tuple[bool, V | None]:
        """(hit, value): a miss when the key was never put or its entry has expired."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        if entry[0] <= self.clock():
            del self._entries[key]
            return False, None
        self._entries.move_to_end(key)
        return True, entry[1]

    def put(self, key: K, value: V, *, ttl: float | None = None) -> None:
        self._entries[key] = (self.clock() + (self.ttl if ttl is None else ttl), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def get_or_load(self, key: K, load: Callable[[], V]) -> V:
        """The cached value, or `load()` stored for the TTL."""
        hit, value = self.get(key)
        if hit:
            return value  # type: ignore[return-value]  # a hit holds a V (which may itself be None)
        value = load()
        self.put(key, value)
        return value

    def clear(self) -> None:
        self._entries.clear()
