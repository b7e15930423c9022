"""Human output of ``rstmdb-cli``: one function per result, plus colours and layout.

Every function returns text; printing is the caller's business. Colours are
ANSI codes from :class:`Style`, enabled only when the stream is a terminal
(and neither ``NO_COLOR`` is set nor ``TERM=dumb``). The line formats are
those of the reference CLI (OPERATIONS §8.2–§8.4); aligned fields are used
where the reference leaves the layout open. Nothing here raises.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any, TextIO

from pyrstmdb.client import Event, Notice, UnwatchResult
from pyrstmdb.results import (
    ApplyEventResult,
    BatchResult,
    CompactResult,
    CreateInstanceResult,
    FlushAllResult,
    GetInstanceResult,
    GetMachineResult,
    HistoryResult,
    ListInstancesResult,
    PutMachineResult,
    SnapshotResult,
    WalReadResult,
    WalRecord,
    WalStatsResult,
)

_CODES = {"green": "32", "red": "31", "yellow": "33", "cyan": "36", "bold": "1", "dim": "2"}


class Style:
    """ANSI colours, or plain text when disabled."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def paint(self, text: str, colour: str) -> str:
        if not self.enabled:
            return text
        return f"\x1b[{_CODES[colour]}m{text}\x1b[0m"

    def green(self, text: str) -> str:
        return self.paint(text, "green")

    def red(self, text: str) -> str:
        return self.paint(text, "red")

    def yellow(self, text: str) -> str:
        return self.paint(text, "yellow")

    def cyan(self, text: str) -> str:
        return self.paint(text, "cyan")

    def bold(self, text: str) -> str:
        return self.paint(text, "bold")

    def dim(self, text: str) -> str:
        return self.paint(text, "dim")


def style_for(stream: TextIO) -> Style:
    """Colours only on a terminal."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return Style(False)
    try:
        return Style(stream.isatty())
    except (AttributeError, ValueError):
        return Style(False)


PLAIN = Style(False)


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def human_size(size: int) -> str:
    for limit, unit in ((1024**3, "GB"), (1024**2, "MB"), (1024, "KB")):
        if size >= limit:
            return f"{size / limit:.2f} {unit}"
    return f"{size} B"


def fields(pairs: Sequence[tuple[str, object]], indent: str = "  ") -> list[str]:
    """``Label: value`` lines with the values aligned."""
    width = max((len(label) for label, _ in pairs), default=0) + 1
    return [f"{indent}{label + ':':<{width}} {value}" for label, value in pairs]


# -- machines ---------------------------------------------------------------------------------
def put_machine(result: PutMachineResult, s: Style) -> str:
    verb = s.green("Created") if result.created else s.yellow("Already exists")
    return (
        f"{verb} machine {s.cyan(result.machine)} v{result.version} "
        f"(checksum: {result.stored_checksum})"
    )


def get_machine(name: str, version: int, result: GetMachineResult, s: Style) -> str:
    title = s.bold(f"Machine {s.cyan(name)} v{version}")
    return f"{title}\n{pretty_json(result.definition)}"


def machine_line(name: str, version: int, definition: dict[str, Any], s: Style) -> str:
    states = len(definition.get("states") or [])
    transitions = len(definition.get("transitions") or [])
    return (
        f"  {s.cyan(name)} v{version} "
        f"({s.yellow(str(states))} states, {s.yellow(str(transitions))} transitions)"
    )


# -- instances --------------------------------------------------------------------------------
def created(machine: str, version: int, result: CreateInstanceResult, s: Style) -> str:
    return "\n".join(
        [
            f"{s.green('Created')} instance {s.cyan(result.instance_id)}",
            f"  Machine: {machine} v{version}",
            f"  State: {s.yellow(result.state)}",
            f"  WAL offset: {result.wal_offset}",
        ]
    )


def instance(instance_id: str, result: GetInstanceResult, s: Style) -> str:
    lines = [
        s.bold(f"Instance {s.cyan(instance_id)}"),
        f"  Machine: {result.machine} v{result.version}",
        f"  State: {s.yellow(result.state)}",
        f"  Context: {pretty_json(result.ctx)}",
    ]
    if result.last_event_id is not None:
        lines.append(f"  Last event id: {result.last_event_id}")
    lines.append(f"  Last WAL offset: {result.last_wal_offset}")
    return "\n".join(lines)


def history(result: HistoryResult, s: Style) -> str:
    """One line per entry, oldest first, with what it did."""
    lines = [s.bold(f"History of {s.cyan(result.instance_id)}")]
    if result.truncated:
        lines.append(s.yellow("  (older entries are not kept)"))
    if not result.entries:
        lines.append(s.yellow("  No entries"))
    for entry in result.entries:
        kind = entry.get("kind")
        where = f"  @{entry.get('wal_offset')}"
        if kind == "created":
            lines.append(f"{where} {s.green('created')} in {s.yellow(str(entry.get('to_state')))}")
        elif kind == "deleted":
            lines.append(f"{where} {s.red('deleted')} (was {entry.get('from_state')})")
        else:
            move = f"{entry.get('from_state')} -> {s.yellow(str(entry.get('to_state')))}"
            line = f"{where} {s.cyan(str(entry.get('event')))}: {move}"
            if entry.get("payload"):
                line += f" payload={json.dumps(entry['payload'], ensure_ascii=False)}"
            lines.append(line)
    return "\n".join(lines)


def instances(result: ListInstancesResult, s: Style) -> str:
    if not result.instances:
        return s.yellow("No instances")
    more = f", showing first {len(result.instances)}" if result.has_more else ""
    lines = [f"{s.bold(s.cyan('Instances'))} ({result.total} total{more})"]
    for item in result.instances:
        lines.append(
            f"  {s.cyan(item.id)} ({item.machine} v{item.version}) state={s.yellow(item.state)}"
        )
    return "\n".join(lines)


def applied(instance_id: str, event: str, result: ApplyEventResult, s: Style) -> str:
    lines = [
        f"{s.green('Applied')} event {s.cyan(event)} on {instance_id}",
        f"  {result.from_state} → {s.yellow(result.to_state)}",
        f"  WAL offset: {result.wal_offset}",
    ]
    if not result.applied:
        lines.append(s.dim("  (already applied: idempotent replay)"))
    return "\n".join(lines)


def deleted(instance_id: str, s: Style) -> str:
    return f"{s.green('Deleted')} instance {s.cyan(instance_id)}"


def snapshot(result: SnapshotResult, s: Style) -> str:
    pairs = [
        ("Snapshot", result.snapshot_id),
        ("WAL offset", result.wal_offset),
        ("Size", human_size(result.size_bytes)),
        ("Checksum", result.checksum),
    ]
    title = f"{s.green('Snapshot created')} for instance {s.cyan(result.instance_id)}"
    return "\n".join([title, *fields(pairs)])


def batch(result: BatchResult, s: Style) -> str:
    lines = [f"{s.bold('Batch')} ({len(result.results)} ops)"]
    for index, item in enumerate(result.results):
        if item.status == "ok" and item.result is not None:
            lines.append(f"  [{index}] {s.green('ok')} {compact_json(item.result.to_dict())}")
        else:
            error = item.error or {}
            reason = f"{error.get('code')}: {error.get('message')}"
            lines.append(f"  [{index}] {s.red('error')} {reason}")
    return "\n".join(lines)


# -- storage ----------------------------------------------------------------------------------
def _wal_detail(entry: dict[str, Any]) -> str | None:
    kind = entry.get("type")
    if kind == "create_instance":
        return (
            f"         Instance: {entry.get('instance_id', '?')}, "
            f"Machine: {entry.get('machine', '?')} v{entry.get('version', 0)}"
        )
    if kind == "apply_event":
        return (
            f"         Instance: {entry.get('instance_id', '?')}, "
            f"Event: {entry.get('event', '?')}, "
            f"{entry.get('from_state', '?')} → {entry.get('to_state', '?')}"
        )
    return None


def wal_record(record: WalRecord, s: Style) -> list[str]:
    kind = str(record.entry.get("type", "unknown"))
    line = f"[{s.cyan(f'{record.sequence:>6}')}] {record.offset:>12} | {s.yellow(kind)}"
    detail = _wal_detail(record.entry)
    return [line] if detail is None else [line, detail]


def wal(result: WalReadResult, s: Style) -> str:
    if not result.records:
        return s.yellow("No WAL entries")
    lines: list[str] = []
    for record in result.records:
        lines.extend(wal_record(record, s))
    if result.next_offset is not None:
        lines += ["", f"{s.dim('Next offset')}: {result.next_offset}"]
    return "\n".join(lines)


def wal_stats(result: WalStatsResult, s: Style) -> str:
    io = result.io_stats
    wal_pairs: list[tuple[str, object]] = [
        ("Entries", result.entry_count),
        ("Segments", result.segment_count),
        ("Size", human_size(result.total_size_bytes)),
        ("Latest offset", result.latest_offset),
    ]
    io_pairs: list[tuple[str, object]] = [
        ("Bytes written", io.bytes_written),
        ("Bytes read", io.bytes_read),
        ("Writes", io.writes),
        ("Reads", io.reads),
        ("Fsyncs", io.fsyncs),
    ]
    return "\n".join(
        [
            s.bold(s.cyan("WAL Statistics")),
            *fields(wal_pairs),
            "",
            s.bold(s.cyan("I/O Statistics")),
            *fields(io_pairs),
        ]
    )


def compact(result: CompactResult, s: Style) -> str:
    return "\n".join(
        [
            s.green("Compaction complete"),
            f"  Snapshots created: {result.snapshots_created}",
            f"  WAL segments deleted: {result.segments_deleted}",
            f"  Bytes reclaimed: {human_size(result.bytes_reclaimed)}",
            "  ---",
            f"  Total snapshots: {result.total_snapshots}",
            f"  WAL segments remaining: {result.wal_segments}",
        ]
    )


def flushed(result: FlushAllResult, s: Style) -> str:
    return (
        f"{s.green('Flushed')}: {result.instances_removed} instances and "
        f"{result.machines_removed} machine versions removed"
    )


# -- subscriptions ----------------------------------------------------------------------------
def unwatched(result: UnwatchResult, s: Style) -> str:
    if result.removed:
        return f"{s.green('Removed')} subscription {s.cyan(result.subscription_id)}"
    return f"{s.yellow('Warning')}: subscription {result.subscription_id} not found"


def event_line(event: Event) -> str:
    return compact_json(event.to_dict())


def notice_line(notice: Notice, s: Style) -> str:
    if notice.code == "HISTORY_LOST":
        return (
            f"{s.yellow('Warning')}: history lost: events from offset {notice.lost_from} "
            f"up to {notice.resumed_at} were compacted away"
        )
    return f"{s.yellow('Warning')}: {notice}"
