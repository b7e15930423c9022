"""In-memory database state: machines, instances, idempotency keys.

``Instance`` is an immutable named tuple; every change replaces the instance
object, so a shallow copy of the dictionaries is a consistent snapshot (used
by compaction). ``instances`` keeps creation order (dict insertion order; an
update keeps the key's position), which is the LIST_INSTANCES order (⚑S13).

``history`` keeps, per instance, the last ``history_limit`` entries of its
audit trail (created, each applied event, deleted) as :data:`HistoryEntry`
tuples, oldest first; a deleted instance keeps its history. A limit of 0
keeps none.

``Staged`` is a copy-on-write overlay used to decide an atomic batch without
touching the real state. Both offer the same view and mutation methods, so
``engine.machine`` works on either.

Pure: no I/O.
"""

from __future__ import annotations

from collections import deque
from typing import Any, NamedTuple, Protocol

from pyrstmdb.engine.definition import MachineDefinition
from pyrstmdb.engine.idempotency import IdempotencyCache, Scope


class Instance(NamedTuple):
    id: str
    machine: str
    version: int
    state: str
    ctx: dict[str, Any]
    last_event_id: str | None
    last_wal_offset: int
    created_at: int
    updated_at: int
    deleted: bool


#: ``(wal_offset, kind, event, from_state, to_state, payload, event_id, ts)``; kind is
#: ``"created"``, ``"event"`` or ``"deleted"`` and fields that do not apply are ``None``.
HistoryEntry = tuple[
    int, str, str | None, str | None, str | None, dict[str, Any] | None, str | None, int
]


class View(Protocol):
    """What deciding a command reads and writes."""

    def instance(self, instance_id: str) -> Instance | None: ...

    def machine(self, name: str, version: int) -> MachineDefinition | None: ...

    def versions(self, name: str) -> list[int]: ...

    def recall(self, scope: Scope, now_ms: int) -> Any | None: ...

    def set_instance(self, instance: Instance) -> None: ...

    def remember(self, scope: Scope, value: Any, ts: int) -> None: ...

    def add_history(self, instance_id: str, entry: HistoryEntry) -> None: ...


class State:
    """The authoritative state; mutated only by ``engine.machine.apply``."""

    __slots__ = (
        "deleted_count",
        "history",
        "history_limit",
        "idempotency",
        "instances",
        "machines",
    )

    def __init__(
        self, idempotency: IdempotencyCache | None = None, history_limit: int = 100
    ) -> None:
        self.machines: dict[str, dict[int, MachineDefinition]] = {}
        self.instances: dict[str, Instance] = {}
        self.idempotency = idempotency if idempotency is not None else IdempotencyCache()
        self.deleted_count = 0
        self.history_limit = history_limit
        self.history: dict[str, deque[HistoryEntry]] = {}

    # -- view ------------------------------------------------------------------
    def instance(self, instance_id: str) -> Instance | None:
        return self.instances.get(instance_id)

    def machine(self, name: str, version: int) -> MachineDefinition | None:
        versions = self.machines.get(name)
        return None if versions is None else versions.get(version)

    def versions(self, name: str) -> list[int]:
        return sorted(self.machines.get(name, ()))

    def recall(self, scope: Scope, now_ms: int) -> Any | None:
        return self.idempotency.get(scope, now_ms)

    # -- mutation --------------------------------------------------------------
    def set_instance(self, instance: Instance) -> None:
        previous = self.instances.get(instance.id)
        if instance.deleted and (previous is None or not previous.deleted):
            self.deleted_count += 1
        self.instances[instance.id] = instance

    def remember(self, scope: Scope, value: Any, ts: int) -> None:
        self.idempotency.put(scope, value, ts)

    def add_machine(self, definition: MachineDefinition) -> None:
        self.machines.setdefault(definition.name, {})[definition.version] = definition

    def add_history(self, instance_id: str, entry: HistoryEntry) -> None:
        entries = self.history.get(instance_id)
        if entries is None:
            if not self.history_limit:
                return
            entries = self.history[instance_id] = deque(maxlen=self.history_limit)
        entries.append(entry)

    def set_history(self, instance_id: str, entries: list[HistoryEntry]) -> None:
        """Replace an instance's history (restoring a checkpoint); keeps the newest."""
        if self.history_limit:
            self.history[instance_id] = deque(entries, maxlen=self.history_limit)

    def history_of(self, instance_id: str) -> list[HistoryEntry]:
        """A copy of the instance's kept history, oldest first."""
        entries = self.history.get(instance_id)
        return [] if entries is None else list(entries)

    # -- queries ---------------------------------------------------------------
    @property
    def live_instances(self) -> int:
        return len(self.instances) - self.deleted_count

    @property
    def machine_versions(self) -> int:
        return sum(len(versions) for versions in self.machines.values())

    def clear(self) -> tuple[int, int]:
        """Forget everything; returns ``(instances, machine versions)`` removed."""
        removed = (len(self.instances), self.machine_versions)
        self.machines.clear()
        self.instances.clear()
        self.history.clear()
        self.idempotency.clear()
        self.deleted_count = 0
        return removed


class Staged:
    """A copy-on-write overlay over a ``State``; the base is never written."""

    __slots__ = ("base", "instances", "remembered")

    def __init__(self, base: State) -> None:
        self.base = base
        self.instances: dict[str, Instance] = {}
        self.remembered: dict[Scope, Any] = {}

    def instance(self, instance_id: str) -> Instance | None:
        staged = self.instances.get(instance_id)
        return staged if staged is not None else self.base.instance(instance_id)

    def machine(self, name: str, version: int) -> MachineDefinition | None:
        return self.base.machine(name, version)

    def versions(self, name: str) -> list[int]:
        return self.base.versions(name)

    def recall(self, scope: Scope, now_ms: int) -> Any | None:
        staged = self.remembered.get(scope)
        return staged if staged is not None else self.base.recall(scope, now_ms)

    def set_instance(self, instance: Instance) -> None:
        self.instances[instance.id] = instance

    def remember(self, scope: Scope, value: Any, ts: int) -> None:
        self.remembered[scope] = value

    def add_history(self, instance_id: str, entry: HistoryEntry) -> None:
        return None  # staged decisions are not history; the real apply records it
