"""One handler per ``rstmdb-cli`` command (except streaming and REPL-only ones).

A handler reads its arguments from the :class:`~pyrstmdb.cli.context.Context`
(flags first, then positional words — the REPL's short forms), parses JSON
arguments before touching the server, makes its request(s) and returns an
:class:`~pyrstmdb.cli.context.Output`. Raises ``UsageError``, ``CliError``,
``ConnectFailed``, ``RstmdbError`` or ``ClientConnectionError``; the caller
reports them.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pyrstmdb import diagram
from pyrstmdb.cli import render
from pyrstmdb.cli.context import (
    Context,
    Output,
    Positionals,
    UsageError,
    json_arg,
    optional_json,
)
from pyrstmdb.client.api import latest_version
from pyrstmdb.results import GetMachineResult

REPL_LIST_LIMIT = 50  # the REPL's list-instances shows the first 50 by default


def ping(ctx: Context) -> Output:
    ctx.client.ping()
    return Output({"pong": True}, ctx.style.green("PONG"))


def info(ctx: Context) -> Output:
    doc = ctx.client.info().to_dict()
    return Output(doc, render.pretty_json(doc))


def hash_token(ctx: Context) -> Output:
    return Output(None, hashlib.sha256(ctx.ns.token.encode("utf-8")).hexdigest())


# -- machines ---------------------------------------------------------------------------------
def put_machine(ctx: Context) -> Output:
    words = Positionals(ctx.ns.words)
    name = words.take(ctx.ns.name, "NAME (-n/--name)")
    version = words.take_uint(ctx.ns.version, "VERSION (-v/--version)")
    text = " ".join(words.rest())
    assert version is not None
    if not text:
        raise UsageError("missing DEFINITION")
    definition = json_arg(text, "DEFINITION")
    result = ctx.client.put_machine(name, version, definition)
    return Output(result.to_dict(), render.put_machine(result, ctx.style))


def get_machine(ctx: Context) -> Output:
    words = Positionals([w for w in (ctx.ns.name_pos, ctx.ns.version_pos) if w is not None])
    name = words.take(ctx.ns.name, "NAME")
    version = words.take_uint(ctx.ns.version, "VERSION", required=False)
    words.done()
    if version is None:
        version = latest_version(ctx.client.list_machines(), name)
    result = ctx.client.get_machine(name, version)
    shown = version if version is not None else 0
    fmt = getattr(ctx.ns, "format", None)
    if fmt in diagram.FORMATS:
        text = diagram.render(result.definition, fmt, f"{name} v{shown}").rstrip("\n")
        return Output(None, text)
    return Output(result.to_dict(), render.get_machine(name, shown, result, ctx.style))


def list_machines(ctx: Context) -> Output:
    listing = ctx.client.list_machines()
    if ctx.json:
        return Output(listing.to_dict(), "")
    if not listing.items:
        return Output(listing.to_dict(), ctx.style.yellow("No machines registered"))
    latest = [(item.machine, max(item.versions)) for item in listing.items if item.versions]
    pipeline = ctx.client.pipeline()
    for name, version in latest:
        pipeline.get_machine(name, version)
    found = dict(zip(latest, pipeline.execute(raise_on_error=False), strict=True))
    lines = []
    for item in listing.items:
        key = (item.machine, max(item.versions)) if item.versions else None
        result = found.get(key) if key else None
        if isinstance(result, GetMachineResult) and key is not None:
            lines.append(render.machine_line(key[0], key[1], result.definition, ctx.style))
        else:
            lines.append(f"  {ctx.style.cyan(item.machine)} [versions: {item.versions}]")
    return Output(listing.to_dict(), "\n".join(lines))


# -- instances --------------------------------------------------------------------------------
def create_instance(ctx: Context) -> Output:
    ns = ctx.ns
    words = Positionals(ns.words)
    machine = words.take(ns.machine, "MACHINE (-m/--machine)")
    version = words.take_uint(ns.machine_version, "VERSION (-V/--version)")
    instance_id = words.take(ns.id, "ID", required=False)
    ctx_text = words.take(ns.ctx, "CTX", required=False)
    words.done()
    initial_ctx = optional_json(ctx_text, "--ctx")
    assert version is not None
    result = ctx.client.create_instance(
        machine, version, instance_id, initial_ctx, ns.idempotency_key
    )
    return Output(result.to_dict(), render.created(machine, version, result, ctx.style))


def get_instance(ctx: Context) -> Output:
    result = ctx.client.get_instance(ctx.ns.id)
    return Output(result.to_dict(), render.instance(ctx.ns.id, result, ctx.style))


def history(ctx: Context) -> Output:
    ns = ctx.ns
    words = Positionals(ns.words)
    instance_id = words.take(ns.instance, "ID (-i/--instance)")
    words.done()
    limit = 100 if ns.limit is None else ns.limit
    result = ctx.client.get_history(instance_id, limit, ns.before_offset)
    return Output(result.to_dict(), render.history(result, ctx.style))


def list_instances(ctx: Context) -> Output:
    ns = ctx.ns
    words = Positionals(ns.words)
    machine = words.take(ns.machine, "MACHINE", required=False)
    state = words.take(ns.state, "STATE", required=False)
    words.done()
    limit = ns.limit if ns.limit is not None or ctx.session is None else REPL_LIST_LIMIT
    result = ctx.client.list_instances(machine, state, limit, ns.offset)
    return Output(result.to_dict(), render.instances(result, ctx.style))


def delete_instance(ctx: Context) -> Output:
    result = ctx.client.delete_instance(ctx.ns.id, ctx.ns.idempotency_key)
    return Output(result.to_dict(), render.deleted(ctx.ns.id, ctx.style))


def apply_event(ctx: Context) -> Output:
    ns = ctx.ns
    words = Positionals(ns.words)
    instance_id = words.take(ns.instance, "INSTANCE (-i/--instance)")
    event = words.take(ns.event, "EVENT (-e/--event)")
    payload_text = words.take(ns.payload, "PAYLOAD", required=False)
    words.done()
    payload = optional_json(payload_text, "--payload")
    result = ctx.client.apply_event(
        instance_id,
        event,
        payload,
        expected_state=ns.expected_state,
        expected_wal_offset=ns.expected_wal_offset,
        event_id=ns.event_id,
        idempotency_key=ns.idempotency_key,
    )
    return Output(result.to_dict(), render.applied(instance_id, event, result, ctx.style))


def snapshot_instance(ctx: Context) -> Output:
    result = ctx.client.snapshot_instance(ctx.ns.id)
    return Output(result.to_dict(), render.snapshot(result, ctx.style))


def batch(ctx: Context) -> Output:
    ops: Any = json_arg(ctx.ns.ops, "OPS")
    result = ctx.client.batch(ops, ctx.ns.mode)
    return Output(result.to_dict(), render.batch(result, ctx.style))


# -- storage ----------------------------------------------------------------------------------
def wal_read(ctx: Context) -> Output:
    ns = ctx.ns
    words = Positionals(ns.words)
    start = words.take_uint(ns.from_offset, "FROM", required=False)
    limit = words.take_uint(ns.limit, "LIMIT", required=False)
    words.done()
    result = ctx.client.wal_read(start or 0, limit)
    return Output(result.to_dict(), render.wal(result, ctx.style))


def wal_stats(ctx: Context) -> Output:
    result = ctx.client.wal_stats()
    return Output(result.to_dict(), render.wal_stats(result, ctx.style))


def compact(ctx: Context) -> Output:
    result = ctx.client.compact(ctx.ns.force)
    return Output(result.to_dict(), render.compact(result, ctx.style))


def flush_all(ctx: Context) -> Output:
    result = ctx.client.flush_all()
    return Output(result.to_dict(), render.flushed(result, ctx.style))


def unwatch(ctx: Context) -> Output:
    result = ctx.client.unwatch(ctx.ns.subscription_id)
    return Output(result.to_dict(), render.unwatched(result, ctx.style))
