"""The result table: one row per system and client count, ratios against pyrstmdb.

The ratio column is pyrstmdb's events/s divided by the row's events/s, at the same
number of clients: server rows against the pyrstmdb server, in-process rows against
pyrstmdb embedded. Above 1 pyrstmdb is faster, below 1 the row's system is.

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.compare.runner import Measurement

SERVER_REFERENCE = "pyrstmdb server"
IN_PROCESS_REFERENCE = "pyrstmdb embedded"
HEADER = (
    "system",
    "clients",
    "instances",
    "creates/s",
    "events/s",
    "p50 ms",
    "p99 ms",
    "fsyncs/write",
    "CPU µs/write",
    "pyrstmdb/this",
)


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    clients: int
    in_process: bool
    instances: int
    creates_per_s: float
    events_per_s: float
    p50_ms: float
    p99_ms: float
    fsyncs_per_write: float | None
    cpu_us_per_write: float | None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def row(measured: Measurement, in_process: bool) -> Row:
    writes = measured.writes
    return Row(
        measured.label,
        measured.clients,
        in_process,
        measured.instances,
        measured.instances / measured.create_seconds,
        measured.events / measured.event_seconds,
        percentile(measured.latencies, 0.50) * 1000,
        percentile(measured.latencies, 0.99) * 1000,
        None if measured.fsyncs is None else measured.fsyncs / writes,
        None if measured.cpu_seconds is None else measured.cpu_seconds / writes * 1e6,
    )


def _reference(rows: list[Row], one: Row) -> Row | None:
    name = IN_PROCESS_REFERENCE if one.in_process else SERVER_REFERENCE
    return next((r for r in rows if r.label == name and r.clients == one.clients), None)


def _cells(rows: list[Row], one: Row) -> tuple[str, ...]:
    reference = _reference(rows, one)
    ratio = "–" if reference is None else f"{reference.events_per_s / one.events_per_s:.2f}"
    fsyncs = "n/a" if one.fsyncs_per_write is None else f"{one.fsyncs_per_write:.2f}"
    cpu = "n/a" if one.cpu_us_per_write is None else f"{one.cpu_us_per_write:,.0f}"
    return (
        one.label + (" *" if one.in_process else ""),
        str(one.clients),
        f"{one.instances:,}",
        f"{one.creates_per_s:,.0f}",
        f"{one.events_per_s:,.0f}",
        f"{one.p50_ms:.2f}",
        f"{one.p99_ms:.2f}",
        fsyncs,
        cpu + (" *" if one.in_process and one.cpu_us_per_write is not None else ""),
        ratio,
    )


def table(rows: list[Row]) -> str:
    """A Markdown table with aligned columns, and its footnote."""
    lines = [HEADER, *(_cells(rows, one) for one in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]

    def render(cells: tuple[str, ...]) -> str:
        padded = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [render(lines[0]), rule, *(render(line) for line in lines[1:])]
    notes = (
        "* in process: clients are writer threads, and the CPU is the whole benchmark "
        "process (database and workload together).\n"
        "p50/p99 are per event (phase 2); fsyncs and CPU are per durable write "
        "(creates and events). pyrstmdb/this: pyrstmdb's events/s over this row's, "
        "same number of clients (servers against the server, in-process against embedded)."
    )
    return "\n".join(body) + "\n\n" + notes
