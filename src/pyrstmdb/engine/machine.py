"""Deciding commands and applying records: every state rule lives here.

``decide_*(view, cmd, now)`` checks a command against the current state and
returns either the record to log or, for an idempotent replay or a no-op, the
finished result (nothing to log). It raises the protocol error of the first
failing rule (SEMANTICS §1.4, §3, §4; step order as specified). It never
changes anything.

``apply(view, record, offset)`` changes the state for a logged record and
returns the operation's result. The same function serves live writes and
recovery replay, so both paths agree by construction (⚑S10–S12). During
replay, records that do not fit the state (e.g. an event for an unknown
instance) are ignored, as the log is trusted.

Pure: no I/O, no clock; ``now`` and id generation come from the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyrstmdb.engine.commands import ApplyEvent, CreateInstance, DeleteInstance, PutMachine
from pyrstmdb.engine.definition import MachineDefinition, compile_definition
from pyrstmdb.engine.records import (
    APPLY_EVENT,
    Checkpoint,
    EventApplied,
    InstanceCreated,
    InstanceDeleted,
    MachinePut,
    Record,
    event_fields,
    from_entry,
)
from pyrstmdb.engine.state import Instance, View
from pyrstmdb.errors import (
    BadRequest,
    Conflict,
    GuardFailed,
    InstanceExists,
    InstanceNotFound,
    InvalidTransition,
    MachineNotFound,
    MachineVersionExists,
    MachineVersionLimitExceeded,
)
from pyrstmdb.results import (
    ApplyEventResult,
    CreateInstanceResult,
    DeleteInstanceResult,
    PutMachineResult,
)

_new_instance = tuple.__new__


def instance_not_found(instance_id: str) -> InstanceNotFound:
    return InstanceNotFound(
        f"core error: instance not found: {instance_id}", {"instance_id": instance_id}
    )


def machine_not_found(name: str, version: int) -> MachineNotFound:
    return MachineNotFound(
        f"core error: machine version not found: {name} v{version}",
        {"machine": name, "version": version},
    )


# -- PUT_MACHINE ---------------------------------------------------------------


def decide_put_machine(
    view: View, cmd: PutMachine, now: int, max_versions: int = 0
) -> tuple[MachinePut | None, MachineDefinition, PutMachineResult | None]:
    """``(record, compiled, None)`` for a new version, ``(None, compiled, result)`` if known."""
    versions = view.versions(cmd.machine)
    exists = cmd.version in versions
    if max_versions > 0 and not exists and len(versions) >= max_versions:
        raise MachineVersionLimitExceeded(
            f"machine version limit exceeded: machine '{cmd.machine}' already has "
            f"{len(versions)} versions (limit: {max_versions})",
            {"machine": cmd.machine, "versions": len(versions), "limit": max_versions},
        )
    compiled = compile_definition(cmd.machine, cmd.version, cmd.definition)
    if cmd.checksum is not None and cmd.checksum.lower() != compiled.checksum:
        raise BadRequest(
            "invalid request: checksum does not match the definition",
            {"given": cmd.checksum, "computed": compiled.checksum},
        )
    if exists:
        prior = view.machine(cmd.machine, cmd.version)
        assert prior is not None
        if prior.checksum != compiled.checksum:
            raise MachineVersionExists(
                f"core error: machine version already exists: {cmd.machine} v{cmd.version}",
                {
                    "machine": cmd.machine,
                    "version": cmd.version,
                    "stored_checksum": prior.checksum,
                    "given_checksum": compiled.checksum,
                },
            )
        return None, prior, PutMachineResult(cmd.machine, cmd.version, prior.checksum, False)
    record = MachinePut(cmd.machine, cmd.version, compiled.checksum, cmd.definition, now)
    return record, compiled, None


# -- CREATE_INSTANCE -----------------------------------------------------------


def decide_create(
    view: View, cmd: CreateInstance, now: int, new_id: Callable[[], str]
) -> InstanceCreated | CreateInstanceResult:
    key = cmd.idempotency_key
    if key is not None:
        hit = view.recall(("create", cmd.instance_id or "", key), now)
        if hit is not None:
            return CreateInstanceResult(hit[0], hit[1], hit[2])
    definition = view.machine(cmd.machine, cmd.version)
    if definition is None:
        raise machine_not_found(cmd.machine, cmd.version)
    instance_id = cmd.instance_id if cmd.instance_id is not None else new_id()
    if view.instance(instance_id) is not None:
        raise InstanceExists(
            f"core error: instance already exists: {instance_id}", {"instance_id": instance_id}
        )
    ctx = cmd.initial_ctx if cmd.initial_ctx is not None else {}
    return InstanceCreated(
        instance_id,
        cmd.machine,
        cmd.version,
        definition.initial,
        ctx,
        key,
        cmd.instance_id is None,
        now,
    )


# -- APPLY_EVENT ---------------------------------------------------------------


def _check_expectations(instance: Instance, cmd: ApplyEvent) -> None:
    if cmd.expected_state is not None and cmd.expected_state != instance.state:
        raise Conflict(
            f"core error: state conflict: expected '{cmd.expected_state}', "
            f"actual '{instance.state}'",
            {"expected_state": cmd.expected_state, "actual_state": instance.state},
        )
    if cmd.expected_wal_offset is not None and cmd.expected_wal_offset != instance.last_wal_offset:
        raise Conflict(
            f"core error: WAL offset conflict: expected {cmd.expected_wal_offset}, "
            f"actual {instance.last_wal_offset}",
            {
                "expected_wal_offset": cmd.expected_wal_offset,
                "actual_wal_offset": instance.last_wal_offset,
            },
        )


def _choose_target(definition: MachineDefinition, instance: Instance, event: str) -> str:
    candidates = definition.table.get((instance.state, event))
    if not candidates:
        raise InvalidTransition(
            f"core error: invalid transition: cannot apply '{event}' in state '{instance.state}'",
            {"state": instance.state, "event": event},
        )
    ctx = instance.ctx
    for transition in candidates:
        guard = transition.guard
        if guard is None or guard(ctx):
            return transition.target
    first = candidates[0]
    raise GuardFailed(
        f"core error: guard failed: guard failed for transition '{instance.state}' -> "
        f"'{first.target}' on event '{event}'",
        {
            "state": instance.state,
            "event": event,
            "guards": [t.guard.source for t in candidates if t.guard is not None],
        },
    )


def decide_apply(view: View, cmd: ApplyEvent, now: int) -> EventApplied | ApplyEventResult:
    instance = view.instance(cmd.instance_id)
    if instance is None or instance.deleted:
        raise instance_not_found(cmd.instance_id)
    key = cmd.idempotency_key
    if key is not None:
        hit = view.recall(("apply", cmd.instance_id, key), now)
        if hit is not None:
            return ApplyEventResult(hit[0], hit[1], hit[2], hit[3], False, cmd.event_id)
    if cmd.expected_state is not None or cmd.expected_wal_offset is not None:
        _check_expectations(instance, cmd)
    definition = view.machine(instance.machine, instance.version)
    if definition is None:
        raise machine_not_found(instance.machine, instance.version)
    target = _choose_target(definition, instance, cmd.event)
    payload = cmd.payload
    ctx = {**instance.ctx, **payload} if payload else instance.ctx
    return EventApplied(
        cmd.instance_id,
        cmd.event,
        instance.state,
        target,
        payload,
        ctx,
        cmd.event_id,
        key,
        now,
    )


# -- DELETE_INSTANCE -----------------------------------------------------------


def decide_delete(
    view: View, cmd: DeleteInstance, now: int
) -> InstanceDeleted | DeleteInstanceResult:
    instance = view.instance(cmd.instance_id)
    if instance is None:
        raise instance_not_found(cmd.instance_id)
    key = cmd.idempotency_key
    if key is not None:
        hit = view.recall(("delete", cmd.instance_id, key), now)
        if hit is not None:
            return DeleteInstanceResult(cmd.instance_id, True, hit)
    if instance.deleted:
        return DeleteInstanceResult(cmd.instance_id, True, instance.last_wal_offset)
    return InstanceDeleted(cmd.instance_id, key, now)


# -- apply ---------------------------------------------------------------------
#
# Each ``_update_*`` changes the state for one logged record and reports whether
# it applied; ``apply`` (live writes) then builds the operation's result, while
# ``replay`` (recovery) skips that. Both run the same update code.


def _update_machine(view: Any, record: MachinePut, offset: int) -> bool:
    if view.machine(record.machine, record.version) is not None:
        return False
    view.add_machine(compile_definition(record.machine, record.version, record.definition))
    return True


def apply_machine(view: Any, compiled: MachineDefinition) -> PutMachineResult:
    """Register an already compiled definition (the live path skips recompiling)."""
    view.add_machine(compiled)
    return PutMachineResult(compiled.name, compiled.version, compiled.checksum, True)


def _update_create(view: View, record: InstanceCreated, offset: int) -> bool:
    instance_id = record.instance_id
    if view.instance(instance_id) is not None:
        return False
    ts = record.ts
    fields = (
        instance_id,
        record.machine,
        record.version,
        record.initial_state,
        record.initial_ctx,
        None,
        offset,
        ts,
        ts,
        False,
    )
    view.set_instance(_new_instance(Instance, fields))
    view.add_history(
        instance_id, (offset, "created", None, None, record.initial_state, None, None, ts)
    )
    key = record.idempotency_key
    if key is not None:
        scope = ("create", "" if record.auto_id else instance_id, key)
        view.remember(scope, (instance_id, record.initial_state, offset), ts)
    return True


def _update_event(view: View, record: EventApplied, offset: int) -> bool:
    return _event_values(
        view,
        record.instance_id,
        record.event,
        record.payload,
        record.from_state,
        record.to_state,
        record.ctx,
        record.event_id,
        record.idempotency_key,
        record.ts,
        offset,
    )


def _event_values(
    view: View,
    instance_id: str,
    event: str,
    payload: dict[str, Any] | None,
    from_state: str,
    to_state: str,
    ctx: dict[str, Any],
    event_id: str | None,
    key: str | None,
    ts: int,
    offset: int,
) -> bool:
    instance = view.instance(instance_id)
    if instance is None:
        return False
    fields = (
        instance_id,
        instance.machine,
        instance.version,
        to_state,
        ctx,
        event_id,
        offset,
        instance.created_at,
        ts,
        instance.deleted,
    )
    view.set_instance(_new_instance(Instance, fields))
    view.add_history(
        instance_id, (offset, "event", event, from_state, to_state, payload, event_id, ts)
    )
    if key is not None:
        view.remember(("apply", instance_id, key), (from_state, to_state, ctx, offset), ts)
    return True


def _update_delete(view: View, record: InstanceDeleted, offset: int) -> bool:
    instance = view.instance(record.instance_id)
    if instance is None:
        return False
    # A deleted instance is never served again; only its id stays reserved.
    view.set_instance(
        instance._replace(deleted=True, ctx={}, last_wal_offset=offset, updated_at=record.ts)
    )
    entry = (offset, "deleted", None, instance.state, None, None, None, record.ts)
    view.add_history(instance.id, entry)
    key = record.idempotency_key
    if key is not None:
        view.remember(("delete", instance.id, key), offset, record.ts)
    return True


def _update_nothing(view: Any, record: Checkpoint, offset: int) -> bool:
    return False


_UPDATES: dict[type, Callable[[Any, Any, int], bool]] = {
    MachinePut: _update_machine,
    InstanceCreated: _update_create,
    EventApplied: _update_event,
    InstanceDeleted: _update_delete,
    Checkpoint: _update_nothing,
}


def replay(view: Any, record: Record, offset: int) -> None:
    """Apply a logged record during recovery (no result is built)."""
    _UPDATES[type(record)](view, record, offset)


def replay_entry(view: Any, type_code: int, entry: Any, offset: int, default_ts: int) -> None:
    """Apply a logged entry (its JSON object) during recovery.

    The frequent well-formed ``apply_event`` goes straight to the same update as
    a record would, without building the record; everything else is decoded by
    ``records.from_entry`` first. Raises ``ValueError`` for an unreadable entry.
    """
    if type_code == APPLY_EVENT and type(entry) is dict:
        fields = event_fields(entry)
        if fields is not None:
            instance_id, event, from_state, to_state, payload, ctx, event_id, key, ts = fields
            _event_values(
                view,
                instance_id,
                event,
                payload,
                from_state,
                to_state,
                ctx,
                event_id,
                key,
                ts,
                offset,
            )
            return
    record = from_entry(type_code, entry, default_ts)
    if record is not None:
        _UPDATES[type(record)](view, record, offset)


def apply_event_record(view: View, record: EventApplied, offset: int) -> ApplyEventResult:
    """Apply a decided event (the live fast path; the instance exists)."""
    instance_id, event, from_state, to_state, payload, ctx, event_id, key, ts = record
    _event_values(
        view, instance_id, event, payload, from_state, to_state, ctx, event_id, key, ts, offset
    )
    return ApplyEventResult(from_state, to_state, ctx, offset, True, event_id)


def _result(record: Record, offset: int) -> Any:
    if type(record) is EventApplied:
        return ApplyEventResult(
            record.from_state, record.to_state, record.ctx, offset, True, record.event_id
        )
    if type(record) is InstanceCreated:
        return CreateInstanceResult(record.instance_id, record.initial_state, offset)
    if type(record) is InstanceDeleted:
        return DeleteInstanceResult(record.instance_id, True, offset)
    if type(record) is MachinePut:
        return PutMachineResult(record.machine, record.version, record.definition_hash, True)
    return None


def apply(view: Any, record: Record, offset: int) -> Any:
    """Apply a logged record at ``offset``; returns the result (``None`` if ignored)."""
    if not _UPDATES[type(record)](view, record, offset):
        return None
    return _result(record, offset)
