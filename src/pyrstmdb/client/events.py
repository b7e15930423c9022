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

from dataclasses import dataclass, field
from typing import Any

JsonObject = dict[str, Any]

_EVENT_TEXT = ("subscription_id", "instance_id", "machine", "from_state", "to_state", "event")


class SubscriptionWarning(UserWarning):
    """A subscription was told that it will not receive some events."""


class HistoryLostWarning(SubscriptionWarning):
    """Events a subscription asked for were compacted away before delivery."""


def _object_or_none(obj: JsonObject, key: str) -> JsonObject | None:
    value = obj.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise ValueError(f"event '{key}' is neither an object nor null")


def _opt_int(obj: JsonObject, key: str) -> int | None:
    value = obj.get(key)
    return value if type(value) is int else None


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
    """Something a subscription will not receive.

    ``HISTORY_LOST``: events with offsets in ``[lost_from, resumed_at)`` were
    compacted away. ``EVENT_TOO_LARGE``: the event at ``lost_from`` did not fit
    in one message. Other codes are kept as received; ``fields`` holds the
    whole message.
    """

    subscription_id: str
    code: str
    lost_from: int | None = None
    resumed_at: int | None = None
    fields: JsonObject = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, obj: JsonObject) -> Notice:
        subscription_id = obj.get("subscription_id")
        if not isinstance(subscription_id, str):
            raise ValueError("notice 'subscription_id' is not a string")
        code = obj.get("code")
        lost_from = _opt_int(obj, "lost_from")
        resumed_at = _opt_int(obj, "resumed_at")
        offset = _opt_int(obj, "wal_offset")
        if lost_from is None and offset is not None:
            lost_from, resumed_at = offset, offset + 1
        return cls(
            subscription_id,
            code if isinstance(code, str) else "UNKNOWN",
            lost_from,
            resumed_at,
            dict(obj),
        )

    def to_dict(self) -> JsonObject:
        if self.fields:
            return dict(self.fields)
        out: JsonObject = {"type": "notice", "subscription_id": self.subscription_id}
        out["code"] = self.code
        if self.lost_from is not None:
            out["lost_from"] = self.lost_from
        if self.resumed_at is not None:
            out["resumed_at"] = self.resumed_at
        return out

    @property
    def warning(self) -> type[SubscriptionWarning]:
        return HistoryLostWarning if self.code == "HISTORY_LOST" else SubscriptionWarning

    def __str__(self) -> str:
        where = f"subscription {self.subscription_id}"
        if self.code == "HISTORY_LOST":
            return (
                f"{self.code}: events from offset {self.lost_from} up to {self.resumed_at} "
                f"were compacted away before delivery ({where})"
            )
        if self.code == "EVENT_TOO_LARGE":
            size = self.fields.get("size")
            return (
                f"{self.code}: the event at offset {self.lost_from} ({size} bytes) "
                f"was not sent ({where})"
            )
        return f"{self.code}: {self.fields} ({where})"
