"""What a plan is made of: the requests it yields and the subscriptions it asks for.

A plan (see :mod:`pyrstmdb.client.plans`) is a generator of :class:`Call`
that receives each protocol result object and returns a typed result; a
:class:`WatchSpec` describes a WATCH. Runners raise :class:`ProtocolViolation`
for results that do not parse. No I/O here.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from pyrstmdb.client.events import Notice
from pyrstmdb.errors import ClientConnectionError
from pyrstmdb.protocol import Operation

JsonObject = dict[str, Any]
T = TypeVar("T")
NoticeHandler = Callable[[Notice], None]


class ProtocolViolation(ClientConnectionError):
    """The server sent something this client cannot understand."""


@dataclass(frozen=True, slots=True)
class Call:
    """One request of a plan. ``safe``: may be sent again after a reconnect."""

    op: Operation
    params: JsonObject
    safe: bool = False


Plan = Generator[Call, JsonObject, T]


@dataclass(frozen=True, slots=True)
class WatchSpec:
    """What a subscription asks for: WATCH_INSTANCE or WATCH_ALL and its params."""

    op: Operation
    params: JsonObject
    on_notice: NoticeHandler | None = None


__all__ = ["Call", "JsonObject", "NoticeHandler", "Plan", "ProtocolViolation", "WatchSpec"]
