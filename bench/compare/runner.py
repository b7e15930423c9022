"""One measured run of the workload against one system, then its verification.

The run: define the machine, count records, phase 1 (creates), phase 2 (events,
with fsync and server CPU counters read around it), then verify: exactly
4 records per created instance, every instance ``delivered`` with the merged ctx,
a guard rejection and an invalid transition refused, and nothing logged for them.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

from bench.compare import phases
from bench.compare.procstat import own_cpu_seconds, tree_cpu_seconds
from bench.compare.workload import (
    EVENTS,
    RECORDS_PER_INSTANCE,
    JsonObject,
    Refused,
    Target,
    final_ctx,
    guard_instance,
)


class VerificationError(AssertionError):
    """The system did not end where the workload says it must."""


@dataclass(frozen=True, slots=True)
class Plan:
    clients: int
    seconds: float  # phase 1 budget
    limit: int | None = None  # at most this many instances per client
    prefix: str = "o"

    @property
    def cap(self) -> float:
        """Phase 2 is aborted (an error) when it runs this long."""
        return 20 * self.seconds + 30


@dataclass(frozen=True, slots=True)
class Measurement:
    label: str
    clients: int
    instances: int
    create_seconds: float
    event_seconds: float
    latencies: list[float]
    fsyncs: int | None
    cpu_seconds: float | None

    @property
    def events(self) -> int:
        """Phase 2 operations."""
        return self.instances * len(EVENTS)

    @property
    def writes(self) -> int:
        """Durable operations of both phases (what fsyncs and CPU are divided by)."""
        return self.instances * RECORDS_PER_INSTANCE


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def _cpu(target: Target) -> float | None:
    if target.in_process:
        return own_cpu_seconds()
    return tree_cpu_seconds(target.server_pids())


async def _phases(target: Target, plan: Plan) -> tuple[phases.PhaseResult, phases.PhaseResult]:
    if target.in_process:
        sync_sessions = target.open_sync(plan.clients)
        try:
            made = phases.create_threads(sync_sessions, plan.prefix, plan.seconds, plan.limit)
            return made, phases.apply_threads(sync_sessions, made.ids, plan.cap)
        finally:
            for one in sync_sessions:
                one.close()
    sessions = await target.open_async(plan.clients)
    try:
        made = await phases.create_async(sessions, plan.prefix, plan.seconds, plan.limit)
        return made, await phases.apply_async(sessions, made.ids, plan.cap)
    finally:
        await asyncio.gather(*(one.close() for one in sessions))


async def run(target: Target, plan: Plan) -> Measurement:
    """Run both phases, verify the outcome, and return the figures."""
    await target.prepare(plan.prefix)
    before = await target.record_count()
    fsyncs_before = await target.fsyncs()
    cpu_before = await _cpu(target)
    made, applied = await _phases(target, plan)
    cpu_after = await _cpu(target)
    fsyncs_after = await target.fsyncs()
    ids = [one for own in made.ids for one in own]
    _progress(
        f"  {target.label}, {plan.clients} client(s): {len(ids)} instances in "
        f"{made.seconds:.1f} s, {len(applied.latencies)} events in {applied.seconds:.1f} s"
    )
    await verify(target, plan.prefix, ids, before)
    return Measurement(
        target.label,
        plan.clients,
        len(ids),
        made.seconds,
        applied.seconds,
        applied.latencies,
        None if fsyncs_before is None or fsyncs_after is None else fsyncs_after - fsyncs_before,
        None if cpu_before is None or cpu_after is None else cpu_after - cpu_before,
    )


async def _refused_code(target: Target, instance_id: str, event: str) -> str | None:
    try:
        if target.in_process:
            (session,) = target.open_sync(1)
            try:
                session.apply(instance_id, event, None)
            finally:
                session.close()
        else:
            (remote,) = await target.open_async(1)
            try:
                await remote.apply(instance_id, event, None)
            finally:
                await remote.close()
    except Refused as refused:
        return refused.code
    return None


def _check_states(found: dict[str, tuple[str, JsonObject]], ids: list[str]) -> None:
    for instance_id in ids:
        if instance_id not in found:
            raise VerificationError(f"instance {instance_id} is missing")
        state, ctx = found[instance_id]
        if state != "delivered" or ctx != final_ctx(instance_id):
            raise VerificationError(
                f"instance {instance_id} ended {state} with ctx {ctx}, "
                f"expected delivered with {final_ctx(instance_id)}"
            )


async def _check_count(target: Target, before: int, expected: int, when: str) -> None:
    logged = await target.record_count() - before
    if logged != expected:
        raise VerificationError(f"{when}: {logged} records logged, expected exactly {expected}")


async def verify(target: Target, prefix: str, ids: list[str], before: int) -> None:
    """Raise :class:`VerificationError` unless the run ended exactly as the workload says."""
    expected = RECORDS_PER_INSTANCE * len(ids)
    await _check_count(target, before, expected, "after the phases")
    _check_states(await target.final_states(ids), ids)
    over = guard_instance(prefix)
    checks = [(over, "PAY", "GUARD_FAILED"), (ids[0], "SHIP", "INVALID_TRANSITION")]
    for instance_id, event, code in checks:
        got = await _refused_code(target, instance_id, event)
        if got != code:
            raise VerificationError(f"{event} on {instance_id}: got {got or 'accepted'}, not {code}")
    (state, _), = (await target.final_states([over])).values()
    if state != "created":
        raise VerificationError(f"{over} moved to {state} although its PAY was refused")
    await _check_count(target, before, expected, "after the refused events")
