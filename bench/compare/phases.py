"""The two timed phases, for clients over sockets (asyncio) and for writer threads.

Phase 1: each client creates its own instances until the deadline (or ``limit``
each). Phase 2: each client applies PAY, SHIP, DELIVER to every instance it
created, one event at a time, timing each. Only the clock and the sessions are
touched here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import TypeVar

from bench.compare.workload import (
    EVENTS,
    AsyncSession,
    SyncSession,
    initial_ctx,
    instance_ids,
    payload,
)

T = TypeVar("T")
_clock = time.perf_counter


@dataclass(slots=True)
class PhaseResult:
    seconds: float
    ids: list[list[str]]  # per client
    latencies: list[float]  # per operation, seconds (phase 2 only)


async def _create_async(
    session: AsyncSession, prefix: str, client: int, deadline: float, limit: int | None
) -> list[str]:
    done: list[str] = []
    for instance_id in islice(instance_ids(prefix, client), limit):
        await session.create(instance_id, initial_ctx(instance_id))
        done.append(instance_id)
        if _clock() >= deadline:
            break
    return done


async def _apply_async(session: AsyncSession, ids: list[str], deadline: float) -> list[float]:
    latencies: list[float] = []
    for event in EVENTS:
        for instance_id in ids:
            body = payload(event, instance_id)
            started = _clock()
            await session.apply(instance_id, event, body)
            latencies.append(_clock() - started)
        if _clock() > deadline:
            raise TimeoutError("phase 2 ran far over its time budget")
    return latencies


async def create_async(
    sessions: list[AsyncSession], prefix: str, seconds: float, limit: int | None
) -> PhaseResult:
    started = _clock()
    tasks = [
        _create_async(s, prefix, n, started + seconds, limit) for n, s in enumerate(sessions)
    ]
    ids = await asyncio.gather(*tasks)
    return PhaseResult(_clock() - started, list(ids), [])


async def apply_async(
    sessions: list[AsyncSession], ids: list[list[str]], cap: float
) -> PhaseResult:
    started = _clock()
    tasks = [_apply_async(s, own, started + cap) for s, own in zip(sessions, ids, strict=True)]
    results = await asyncio.gather(*tasks)
    return PhaseResult(_clock() - started, ids, [x for one in results for x in one])


def _create_sync(
    session: SyncSession, prefix: str, client: int, deadline: float, limit: int | None
) -> list[str]:
    done: list[str] = []
    for instance_id in islice(instance_ids(prefix, client), limit):
        session.create(instance_id, initial_ctx(instance_id))
        done.append(instance_id)
        if _clock() >= deadline:
            break
    return done


def _apply_sync(session: SyncSession, ids: list[str], deadline: float) -> list[float]:
    latencies: list[float] = []
    for event in EVENTS:
        for instance_id in ids:
            body = payload(event, instance_id)
            started = _clock()
            session.apply(instance_id, event, body)
            latencies.append(_clock() - started)
        if _clock() > deadline:
            raise TimeoutError("phase 2 ran far over its time budget")
    return latencies


def _in_threads(jobs: list[Callable[[], T]]) -> list[T]:
    with ThreadPoolExecutor(len(jobs), thread_name_prefix="writer") as pool:
        futures = [pool.submit(job) for job in jobs]
        return [future.result() for future in futures]


def create_threads(
    sessions: list[SyncSession], prefix: str, seconds: float, limit: int | None
) -> PhaseResult:
    started = _clock()
    deadline = started + seconds
    jobs = [
        partial(_create_sync, s, prefix, n, deadline, limit) for n, s in enumerate(sessions)
    ]
    ids = _in_threads(jobs)
    return PhaseResult(_clock() - started, ids, [])


def apply_threads(sessions: list[SyncSession], ids: list[list[str]], cap: float) -> PhaseResult:
    started = _clock()
    jobs = [
        partial(_apply_sync, s, own, started + cap) for s, own in zip(sessions, ids, strict=True)
    ]
    results = _in_threads(jobs)
    return PhaseResult(_clock() - started, ids, [x for one in results for x in one])
