"""Where the hub finds subscriptions: by id, by sink, by instance, and the WATCH_ALL ones.

Owns only the indexes; removing a subscription marks it closed so that work
already under way for it (a log read, a batch being dispatched) sends nothing
more. Raises nothing.
"""

from __future__ import annotations

from typing import TypeVar

from .filters import InstanceFilter
from .subscription import Sink, Subscription

K = TypeVar("K")


class Registry:
    def __init__(self) -> None:
        self._by_id: dict[str, Subscription] = {}
        self._by_sink: dict[Sink, dict[str, Subscription]] = {}
        self._by_instance: dict[str, dict[str, Subscription]] = {}
        self._watch_all: dict[str, Subscription] = {}

    def add(self, sub: Subscription) -> None:
        self._by_id[sub.id] = sub
        self._by_sink.setdefault(sub.sink, {})[sub.id] = sub
        if isinstance(sub.filter, InstanceFilter):
            self._by_instance.setdefault(sub.filter.instance_id, {})[sub.id] = sub
        else:
            self._watch_all[sub.id] = sub

    def owned(self, sink: Sink, subscription_id: str) -> Subscription | None:
        """``sink``'s subscription with this id, if it has one."""
        sub = self._by_id.get(subscription_id)
        return sub if sub is not None and sub.sink is sink else None

    def remove(self, sub: Subscription) -> None:
        sub.closed = True
        sub.buffer.clear()
        self._by_id.pop(sub.id, None)
        _discard(self._by_sink, sub.sink, sub.id)
        if isinstance(sub.filter, InstanceFilter):
            _discard(self._by_instance, sub.filter.instance_id, sub.id)
        else:
            self._watch_all.pop(sub.id, None)

    def of_sink(self, sink: Sink) -> list[Subscription]:
        return list(self._by_sink.get(sink, {}).values())

    def sinks(self) -> list[Sink]:
        return list(self._by_sink)

    def watching_all(self) -> list[Subscription]:
        return list(self._watch_all.values())

    def watching(self, instance_id: str) -> list[Subscription]:
        return list(self._by_instance.get(instance_id, {}).values())

    @property
    def empty(self) -> bool:
        return not self._by_id

    @property
    def any_instance_watchers(self) -> bool:
        return bool(self._by_instance)

    def all(self) -> list[Subscription]:
        return list(self._by_id.values())

    def counts(self) -> tuple[int, int]:
        """(WATCH_INSTANCE, WATCH_ALL) subscriptions."""
        return len(self._by_id) - len(self._watch_all), len(self._watch_all)


def _discard(index: dict[K, dict[str, Subscription]], key: K, sub_id: str) -> None:
    group = index.get(key)
    if group is not None:
        group.pop(sub_id, None)
        if not group:
            del index[key]
