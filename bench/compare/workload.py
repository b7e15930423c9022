"""The "order lifecycle" workload: the machine, the data and the client contract.

Machine ``order``: created -PAY-> paid -SHIP-> shipped -DELIVER-> delivered, PAY
guarded by ``ctx.amount <= 1000``. Phase 1 creates instances with ctx
``{"customer": ..., "amount": 500}``; phase 2 applies PAY ``{"payment_id": ...}``,
SHIP ``{"carrier": "ups"}`` and DELIVER to each, one durable operation per event.
Every system is given the same transition table (:data:`TRANSITIONS`), each in
its own form: a pyrstmdb definition, a Lua table, SQL rows, a Python check.

Pure: no I/O.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

MACHINE = "order"
VERSION = 1
STATES = ("created", "paid", "shipped", "delivered")
INITIAL = "created"
EVENTS = ("PAY", "SHIP", "DELIVER")
AMOUNT = 500
GUARD_LIMIT = 1000  # the PAY guard: ctx.amount <= GUARD_LIMIT
RECORDS_PER_INSTANCE = 1 + len(EVENTS)


@dataclass(frozen=True, slots=True)
class Transition:
    source: str
    event: str
    target: str
    max_amount: int | None = None  # the guard ``ctx.amount <= max_amount``, if any


TRANSITIONS = (
    Transition("created", "PAY", "paid", GUARD_LIMIT),
    Transition("paid", "SHIP", "shipped"),
    Transition("shipped", "DELIVER", "delivered"),
)
_BY_KEY = {(t.source, t.event): t for t in TRANSITIONS}

JsonObject = dict[str, Any]


def definition() -> JsonObject:
    """The machine as a pyrstmdb definition."""
    transitions: list[JsonObject] = []
    for t in TRANSITIONS:
        row: JsonObject = {"from": t.source, "event": t.event, "to": t.target}
        if t.max_amount is not None:
            row["guard"] = f"ctx.amount <= {t.max_amount}"
        transitions.append(row)
    return {"states": list(STATES), "initial": INITIAL, "transitions": transitions}


class Refused(Exception):
    """A request the system refused, with its error code (``GUARD_FAILED``...)."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code


def decide(state: str, event: str, ctx: JsonObject) -> str:
    """The next state, or :class:`Refused` (for the peers that decide in Python)."""
    found = _BY_KEY.get((state, event))
    if found is None:
        raise Refused("INVALID_TRANSITION", f"no {event} from {state}")
    if found.max_amount is not None:
        amount = ctx.get("amount")
        if not isinstance(amount, int | float) or not amount <= found.max_amount:
            raise Refused("GUARD_FAILED", f"ctx.amount <= {found.max_amount} is false")
    return found.target


def initial_ctx(instance_id: str) -> JsonObject:
    return {"customer": f"customer-{instance_id}", "amount": AMOUNT}


def payload(event: str, instance_id: str) -> JsonObject | None:
    if event == "PAY":
        return {"payment_id": f"payment-{instance_id}"}
    if event == "SHIP":
        return {"carrier": "ups"}
    return None


def final_ctx(instance_id: str) -> JsonObject:
    """The ctx every instance must end with: the initial ctx merged with every payload."""
    merged = initial_ctx(instance_id)
    for event in EVENTS:
        merged.update(payload(event, instance_id) or {})
    return merged


def instance_ids(prefix: str, client: int) -> Iterator[str]:
    """Client ``client``'s own instance ids, endlessly."""
    number = 0
    while True:
        yield f"{prefix}-{client}-{number}"
        number += 1


def guard_instance(prefix: str) -> str:
    """An instance created with an amount over the limit, for the refusal checks."""
    return f"{prefix}-over-limit"


class AsyncSession(Protocol):
    """One client connection of a server: one request in flight."""

    async def create(self, instance_id: str, ctx: JsonObject) -> None: ...
    async def apply(self, instance_id: str, event: str, payload: JsonObject | None) -> None: ...
    async def close(self) -> None: ...


class SyncSession(Protocol):
    """One writer thread of an in-process database."""

    def create(self, instance_id: str, ctx: JsonObject) -> None: ...
    def apply(self, instance_id: str, event: str, payload: JsonObject | None) -> None: ...
    def close(self) -> None: ...


class Target(ABC):
    """One system under test, already running; the runner drives it."""

    label: str
    in_process: bool = False

    @abstractmethod
    async def prepare(self, prefix: str) -> None:
        """Define the machine (once) and create :func:`guard_instance` (amount over the limit)."""

    @abstractmethod
    async def record_count(self) -> int:
        """Records logged so far (WAL entries, stream entries, log rows)."""

    async def fsyncs(self) -> int | None:
        """fsync calls so far, where the system counts them."""
        return None

    def server_pids(self) -> list[int]:
        """The root processes whose trees do the server's work (empty: in process)."""
        return []

    @abstractmethod
    async def final_states(self, ids: list[str]) -> dict[str, tuple[str, JsonObject]]:
        """State and ctx of each instance."""

    async def open_async(self, count: int) -> list[AsyncSession]:
        raise NotImplementedError(f"{self.label} runs in process")

    def open_sync(self, count: int) -> list[SyncSession]:
        raise NotImplementedError(f"{self.label} is a server")

    async def close(self) -> None:
        """Release the control connection (the server itself is stopped by its owner)."""
