"""Read routes the web console needs beyond the RCP operations.

* ``GET /v1/console/machines/{machine}/versions/{version}/layout``: the state
  diagram laid out (``pyrstmdb.diagram_layout``) plus the checksum; definitions
  never change, so layouts are cached by checksum.
* ``GET /v1/console/machines/{machine}/versions/{version}/counts``: how many
  live instances of that version sit in each state.
* ``GET /v1/console/instances?machine=&version=&state=&limit=&offset=``: the
  LIST_INSTANCES result, with a version filter as well.

Same visibility rule as every read: the answer waits until what it shows is
durable. Errors are raised as ``RstmdbError`` and rendered by the API's
handlers; auth is added by the app that mounts the router.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from pyrstmdb.aio import DurabilityWaiter
from pyrstmdb.core import Core
from pyrstmdb.diagram_layout import layout
from pyrstmdb.engine.state import Instance
from pyrstmdb.server.http.models import InstanceSummary, ListInstances
from pyrstmdb.server.http.routes import ERRORS

UINT32_MAX = 2**32 - 1
LAYOUT_CACHE_SIZE = 256

Version = Annotated[int, Query(ge=0, le=UINT32_MAX)]
PathVersion = Annotated[int, Path(ge=0, le=UINT32_MAX)]


class StateBox(BaseModel):
    id: str
    x: float
    y: float
    w: float
    h: float
    initial: bool


class LabelBox(BaseModel):
    x: float
    y: float
    w: float
    h: float


class TransitionPath(BaseModel):
    index: int
    event: str
    guard: str | None
    label: str
    sources: list[str] = Field(alias="from")
    to: str
    label_box: LabelBox
    inbound: list[list[list[float]]]
    outbound: list[list[float]]


class DiagramLayout(BaseModel):
    machine: str
    version: int
    checksum: str
    width: float
    height: float
    nodes: list[StateBox]
    edges: list[TransitionPath]


class StateCounts(BaseModel):
    machine: str
    version: int
    states: dict[str, int]
    total: int


class _LayoutCache:
    """Layouts by checksum, least recently used dropped first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, dict[str, Any]] = OrderedDict()

    async def get(self, checksum: str, definition: dict[str, Any]) -> dict[str, Any]:
        found = self._items.get(checksum)
        if found is None:
            found = await asyncio.to_thread(layout, definition)
            self._items[checksum] = found
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        self._items.move_to_end(checksum)
        return found


class _Reads:
    """The console's reads over one Core, each waiting for visibility."""

    def __init__(self, core: Core, waiter: DurabilityWaiter) -> None:
        self.core = core
        self.waiter = waiter
        self.layouts = _LayoutCache(LAYOUT_CACHE_SIZE)

    async def definition(self, machine: str, version: int) -> tuple[dict[str, Any], str]:
        result, offset = self.core.get_machine(machine, version)
        await self.waiter.visible(offset)
        return result.definition, result.checksum

    async def instances(self) -> list[Instance]:
        """Every instance as of now, once all of it is durable.

        Copying the values is one step under the GIL, so the loop is held for a
        copy only; callers filter and count the copy in a worker thread.
        """
        items = list(self.core.state.instances.values())
        _, offset = self.core.list_machines()  # waits for everything written so far
        await self.waiter.visible(offset)
        return items


def count_states(
    items: list[Instance], machine: str, version: int, states: list[str]
) -> dict[str, int]:
    """Live instances of one machine version per state (every state listed, in order)."""
    counts = dict.fromkeys(states, 0)
    for i in items:
        if i.machine == machine and i.version == version and not i.deleted:
            counts[i.state] = counts.get(i.state, 0) + 1
    return counts


def select(
    items: list[Instance], machine: str | None, version: int | None, state: str | None
) -> list[Instance]:
    """Live instances matching the filters given, most recently changed first."""
    found = [
        i
        for i in items
        if not i.deleted
        and (machine is None or i.machine == machine)
        and (version is None or i.version == version)
        and (state is None or i.state == state)
    ]
    # newest change first; the log offset orders changes within one millisecond
    found.sort(key=lambda i: (i.updated_at, i.last_wal_offset), reverse=True)
    return found


def _summary(item: Instance) -> InstanceSummary:
    return InstanceSummary(
        id=item.id,
        machine=item.machine,
        version=item.version,
        state=item.state,
        created_at=item.created_at,
        updated_at=item.updated_at,
        last_wal_offset=item.last_wal_offset,
    )


def console_router(core: Core, waiter: DurabilityWaiter) -> APIRouter:
    """The console's routes over ``core`` (the app's middleware checks the token)."""
    reads = _Reads(core, waiter)
    router = APIRouter(prefix="/v1/console", tags=["console"], responses=ERRORS)

    @router.get("/machines/{machine}/versions/{version}/layout", response_model=DiagramLayout)
    async def machine_layout(machine: str, version: PathVersion) -> DiagramLayout:
        """The state diagram of a machine version, laid out (nodes and edge polylines)."""
        definition, checksum = await reads.definition(machine, version)
        drawing = await reads.layouts.get(checksum, definition)
        return DiagramLayout.model_validate(
            {"machine": machine, "version": version, "checksum": checksum, **drawing}
        )

    @router.get("/machines/{machine}/versions/{version}/counts", response_model=StateCounts)
    async def state_counts(machine: str, version: PathVersion) -> StateCounts:
        """How many live instances of a machine version sit in each of its states."""
        definition, _ = await reads.definition(machine, version)
        items = await reads.instances()
        counts = await asyncio.to_thread(
            count_states, items, machine, version, definition["states"]
        )
        return StateCounts(
            machine=machine, version=version, states=counts, total=sum(counts.values())
        )

    @router.get("/instances", response_model=ListInstances)
    async def list_instances(
        machine: str | None = None,
        version: Version | None = None,
        state: str | None = None,
        limit: Annotated[int, Query(ge=0, le=1000)] = 50,
        offset: Annotated[int, Query(ge=0, le=UINT32_MAX)] = 0,
    ) -> ListInstances:
        """LIST_INSTANCES with a version filter too; newest changes first."""
        everything = await reads.instances()
        items = await asyncio.to_thread(select, everything, machine or None, version, state or None)
        page = items[offset : offset + limit]
        return ListInstances(
            instances=[_summary(i) for i in page],
            total=len(items),
            has_more=offset + len(page) < len(items),
        )

    return router
