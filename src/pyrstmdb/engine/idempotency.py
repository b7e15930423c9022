"""Idempotency cache: first results of keyed writes, bounded and expiring.

Scopes: ``("create", instance_id or "", key)``, ``("apply", instance_id, key)``
and ``("delete", instance_id, key)``. The stored value is the JSON-able data of
the first result; callers turn it back into a result. Entries expire ``ttl_ms``
after they were written and the oldest are evicted beyond ``max_keys``, so
memory is bounded. The cache is rebuilt from logged records (their ``ts``) and
from checkpoints, so keys survive restart and compaction within their window.

Pure: time comes in as arguments.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

Scope = tuple[str, str, str]


class IdempotencyCache:
    __slots__ = ("_entries", "max_keys", "ttl_ms")

    def __init__(self, ttl_ms: int = 86_400_000, max_keys: int = 1_000_000) -> None:
        self.ttl_ms = ttl_ms
        self.max_keys = max_keys
        self._entries: OrderedDict[Scope, tuple[int, Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, scope: Scope, now_ms: int) -> Any | None:
        """The stored value, or ``None`` if unknown or expired."""
        hit = self._entries.get(scope)
        if hit is None:
            return None
        if now_ms - hit[0] >= self.ttl_ms:
            del self._entries[scope]
            return None
        return hit[1]

    def put(self, scope: Scope, value: Any, ts: int) -> None:
        entries = self._entries
        entries[scope] = (ts, value)
        entries.move_to_end(scope)
        self._evict(ts)

    def discard(self, scope: Scope) -> None:
        self._entries.pop(scope, None)

    def _evict(self, now_ms: int) -> None:
        entries = self._entries
        while len(entries) > self.max_keys:
            entries.popitem(last=False)
        # Drop a few expired entries from the old end on every write.
        for _ in range(4):
            if not entries:
                return
            scope, (ts, _value) = next(iter(entries.items()))
            if now_ms - ts < self.ttl_ms:
                return
            del entries[scope]

    def expire(self, now_ms: int) -> None:
        """Drop every expired entry (used after replay)."""
        entries = self._entries
        stale = [scope for scope, (ts, _v) in entries.items() if now_ms - ts >= self.ttl_ms]
        for scope in stale:
            del entries[scope]

    def items(self) -> Iterator[tuple[Scope, int, Any]]:
        for scope, (ts, value) in self._entries.items():
            yield scope, ts, value

    def clear(self) -> None:
        self._entries.clear()

    def copy(self) -> IdempotencyCache:
        twin = IdempotencyCache(self.ttl_ms, self.max_keys)
        twin._entries = self._entries.copy()
        return twin
