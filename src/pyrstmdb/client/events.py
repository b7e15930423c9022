"""What a subscription delivers: typed events and notices.

:class:`Event` is one pushed transition (PROTOCOL §5). :class:`Notice` is a
``{"type": "notice", ...}`` message: the server could not deliver part of the
history a subscription asked for (it was compacted away), or a WATCH started
later than its ``from_offset``. Notices are never dropped silently: a
subscription records them and reports each one through its ``on_notice``
callback or, without one, as a :class:`HistoryLostWarning`.

Parsing raises ``ValueError`` for a message that lacks a required field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

JsonObject = dict[str, Any]

_EVENT_TEXT = ("subscription_id", "instance_id", "machine", "from_state", "to_state", "event")


class HistoryLostWarning(UserWarning):
    """Events a subscription asked for were compacted away before delivery."""


def _object_or_none(obj: JsonObject, key: str) -> JsonObject | None:
    value = obj.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise ValueError(f"event '{key}' is neither an object nor null")


def _int(obj: JsonObject, key: str) -> int:
    value = obj.get(key)
    if type(value) is not int:
        raise ValueError(f"'{key}' is not an integer")
    return value


@dataclass(frozen=True, slots=True)
class Event:
    """One applied transition, as pushed to a subscription.

    ``payload`` is ``None`` when the event had none; ``ctx`` (the context after
    the transition) is ``None`` for a subscription without ``include_ctx``.
    """

    subscription_id: str
    instance_id: str
    machine: str
    version: int
    wal_offset: int
    from_state: str
    to_state: str
    event: str
    payload: JsonObject | None = None
    ctx: JsonObject | None = None

    @classmethod
    def from_dict(cls, obj: JsonObject) -> Event:
        for key in _EVENT_TEXT:
            if not isinstance(obj.get(key), str):
                raise ValueError(f"event '{key}' is not a string")
        return cls(
            obj["subscription_id"],
            obj["instance_id"],
            obj["machine"],
            _int(obj, "version"),
            _int(obj, "wal_offset"),
            obj["from_state"],
            obj["to_state"],
            obj["event"],
            _object_or_none(obj, "payload"),
            _object_or_none(obj, "ctx"),
        )

    def to_dict(self) -> JsonObject:
        """The event message; ``payload`` and ``ctx`` are left out when ``None``."""
        out: JsonObject = {
            "type": "event",
            "subscription_id": self.subscription_id,
            "instance_id": self.instance_id,
            "machine": self.machine,
            "version": self.version,
            "wal_offset": self.wal_offset,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "event": self.event,
        }
        if self.payload is not None:
            out["payload"] = self.payload
        if self.ctx is not None:
            out["ctx"] = self.ctx
        return out


@dataclass(frozen=True, slots=True)
class Notice:
    """Events with offsets in ``[lost_from, resumed_at)`` can no longer be delivered."""

    subscription_id: str
    code: str
    lost_from: int
    resumed_at: int

    @classmethod
    def from_dict(cls, obj: JsonObject) -> Notice:
        subscription_id = obj.get("subscription_id")
        if not isinstance(subscription_id, str):
            raise ValueError("notice 'subscription_id' is not a string")
        code = obj.get("code")
        return cls(
            subscription_id,
            code if isinstance(code, str) else "HISTORY_LOST",
            _int(obj, "lost_from"),
            _int(obj, "resumed_at"),
        )

    def to_dict(self) -> JsonObject:
        return {
            "type": "notice",
            "subscription_id": self.subscription_id,
            "code": self.code,
            "lost_from": self.lost_from,
            "resumed_at": self.resumed_at,
        }

    def __str__(self) -> str:
        return (
            f"{self.code}: events from offset {self.lost_from} up to {self.resumed_at} "
            f"were compacted away before delivery (subscription {self.subscription_id})"
        )
