"""What a subscription wants and what it is sent.

Owns the two filter kinds (one instance; WATCH_ALL's four lists), the
``Target`` form of an applied event (the record plus its instance's machine
and version, resolved once per event and shared by every subscription), and
the exact wire messages: the PROTOCOL §5 ``event`` and the ``notice`` that
reports history a subscriber could not receive. Pure; raises nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from pyrstmdb.engine.records import EventApplied
from pyrstmdb.engine.state import Instance

HISTORY_LOST = "HISTORY_LOST"


class Target(NamedTuple):
    """An applied event ready to be matched and sent."""

    offset: int
    record: EventApplied
    machine: str
    version: int


def resolve(instances: Mapping[str, Instance], offset: int, record: EventApplied) -> Target | None:
    """The event with its machine and version; ``None`` if its instance is gone (FLUSH_ALL)."""
    instance = instances.get(record.instance_id)
    if instance is None:
        return None
    return Target(offset, record, instance.machine, instance.version)


@dataclass(frozen=True, slots=True)
class InstanceFilter:
    """WATCH_INSTANCE: every applied event of one instance."""

    instance_id: str
    everything = False

    def matches(self, target: Target) -> bool:
        return target.record.instance_id == self.instance_id


@dataclass(frozen=True, slots=True)
class AllFilter:
    """WATCH_ALL: AND across the non-empty lists, OR within each; empty means any."""

    machines: frozenset[str]
    from_states: frozenset[str]
    to_states: frozenset[str]
    events: frozenset[str]

    @classmethod
    def of(
        cls,
        machines: Iterable[str],
        from_states: Iterable[str],
        to_states: Iterable[str],
        events: Iterable[str],
    ) -> AllFilter:
        sets = (frozenset(machines), frozenset(from_states), frozenset(to_states))
        return cls(*sets, frozenset(events))

    @property
    def everything(self) -> bool:
        """No list restricts anything: every event matches."""
        return not (self.machines or self.from_states or self.to_states or self.events)

    def matches(self, target: Target) -> bool:
        record = target.record
        return (
            (not self.machines or target.machine in self.machines)
            and (not self.from_states or record.from_state in self.from_states)
            and (not self.to_states or record.to_state in self.to_states)
            and (not self.events or record.event in self.events)
        )


Filter = InstanceFilter | AllFilter


def event_message(subscription_id: str, target: Target, include_ctx: bool) -> dict[str, Any]:
    """The PROTOCOL §5 event message; ``ctx`` is the one logged with the transition."""
    record = target.record
    message: dict[str, Any] = {
        "type": "event",
        "subscription_id": subscription_id,
        "instance_id": record.instance_id,
        "machine": target.machine,
        "version": target.version,
        "wal_offset": target.offset,
        "from_state": record.from_state,
        "to_state": record.to_state,
        "event": record.event,
        "payload": record.payload,
    }
    if include_ctx:
        message["ctx"] = record.ctx
    return message


def history_lost_notice(subscription_id: str, lost_from: int, resumed_at: int) -> dict[str, Any]:
    """Events owed from ``lost_from`` up to ``resumed_at`` were compacted away before delivery."""
    return {
        "type": "notice",
        "subscription_id": subscription_id,
        "code": HISTORY_LOST,
        "lost_from": lost_from,
        "resumed_at": resumed_at,
    }
