"""Prometheus metrics of the server (OPERATIONS §6 names) and their HTTP listener.

:class:`ServerMetrics` owns a private registry. Request, error and connection
counters are updated as things happen; the instance, machine and WAL figures
and the subscription figures are computed at scrape time from the Core and the
subscription hub, so they are exact after a restart and never stale.
``rstmdb_connections_rejected_total`` counts connections refused at the
connection limit. The standard ``process_*``
collector is included.

:func:`start_metrics_listener` serves, over plain HTTP/1.1 on its own address:
``/metrics`` (text format 0.0.4), ``/health`` and ``/healthz`` (``OK``), ``/`` (a
small HTML page) and 404 for anything else; the method is not checked. Raises
``OSError`` when the address cannot be bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pyrstmdb.core import Core
from pyrstmdb.errors import ErrorCode
from pyrstmdb.protocol import Operation

log = logging.getLogger("pyrstmdb.server.metrics")

DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
SUBSCRIPTION_TYPES = ("instance", "all")
_OPERATIONS: dict[str, Operation] = {op.value: op for op in Operation}


class _StateCollector(Collector):
    """Gauges and counters read from the Core and the subscription hub at scrape time.

    ``hub_stats()`` returns the hub's figures: live subscriptions per type
    (``instance``, ``all``) and events sent per type (``events_instance``,
    ``events_all``).
    """

    def __init__(self, core: Core, hub_stats: Callable[[], Mapping[str, int]]) -> None:
        self._core = core
        self._hub_stats = hub_stats

    def collect(self) -> Iterator[Metric]:
        state = self._core.state
        yield GaugeMetricFamily(
            "rstmdb_instances_total", "Instances that are not deleted", state.live_instances
        )
        yield GaugeMetricFamily(
            "rstmdb_machines_total", "Machine (name, version) pairs", state.machine_versions
        )
        yield from self._wal()
        yield from self._subscriptions()

    def _subscriptions(self) -> Iterator[Metric]:
        stats = self._hub_stats()
        active = GaugeMetricFamily(
            "rstmdb_subscriptions_active", "Live subscriptions", labels=["type"]
        )
        sent = CounterMetricFamily(
            "rstmdb_events_forwarded", "Event messages written", labels=["type"]
        )
        for kind in SUBSCRIPTION_TYPES:
            active.add_metric([kind], stats.get(kind, 0))
            sent.add_metric([kind], stats.get(f"events_{kind}", 0))
        yield active
        yield sent

    def _wal(self) -> Iterator[Metric]:
        stats = self._core.wal_stats()
        io = stats.io_stats
        yield GaugeMetricFamily("rstmdb_wal_entries", "WAL records written", stats.entry_count)
        yield GaugeMetricFamily("rstmdb_wal_segments", "WAL segment files", stats.segment_count)
        yield GaugeMetricFamily(
            "rstmdb_wal_size_bytes", "WAL bytes on disk", stats.total_size_bytes
        )
        counters = (
            ("rstmdb_wal_bytes_written", "Bytes written to the WAL", io.bytes_written),
            ("rstmdb_wal_bytes_read", "Bytes read from the WAL", io.bytes_read),
            ("rstmdb_wal_writes", "WAL write calls", io.writes),
            ("rstmdb_wal_reads", "WAL read calls", io.reads),
            ("rstmdb_wal_fsyncs", "WAL fsync calls", io.fsyncs),
        )
        for name, doc, value in counters:
            yield CounterMetricFamily(name, doc, value)


class ServerMetrics:
    """Every metric of one server, in its own registry."""

    def __init__(self, core: Core, hub_stats: Callable[[], Mapping[str, int]] = lambda: {}) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        reg = self.registry
        self._connections = Counter(
            "rstmdb_connections_total", "Accepted connections", registry=reg
        )
        self._active = Gauge("rstmdb_connections_active", "Open connections", registry=reg)
        self._rejected = Counter(
            "rstmdb_connections_rejected_total",
            "Connections closed at once because of the connection limit",
            registry=reg,
        )
        requests = Counter("rstmdb_requests_total", "Handled requests", ["operation"], registry=reg)
        errors = Counter("rstmdb_errors_total", "Error responses", ["code"], registry=reg)
        duration = Histogram(
            "rstmdb_request_duration_seconds",
            "Time from reading a request to its response being ready",
            ["operation"],
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self._requests = {op: requests.labels(op.value) for op in Operation}
        self._durations = {op: duration.labels(op.value) for op in Operation}
        self._errors = {code.value: errors.labels(code.value) for code in ErrorCode}
        reg.register(_StateCollector(core, hub_stats))
        ProcessCollector(registry=reg)

    # -- connections -----------------------------------------------------------
    def connection_opened(self) -> None:
        self._connections.inc()
        self._active.inc()

    def connection_closed(self) -> None:
        self._active.dec()

    def connection_rejected(self) -> None:
        self._rejected.inc()

    # -- requests ----------------------------------------------------------------
    def requested(self, op: Operation, params: dict[str, Any]) -> None:
        self._requests[op].inc()
        if op is Operation.BATCH:
            self._batch_ops(params.get("ops"))

    def _batch_ops(self, ops: object) -> None:
        if not isinstance(ops, list):
            return
        for item in ops:
            name = item.get("op") if isinstance(item, dict) else None
            sub = _OPERATIONS.get(name) if isinstance(name, str) else None
            if sub is not None:
                self._requests[sub].inc()

    def failed(self, code: str) -> None:
        self._errors[code].inc()

    def observe(self, op: Operation, seconds: float) -> None:
        self._durations[op].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


# -- the HTTP listener -----------------------------------------------------------------

_INDEX = (
    b"<html><head><title>rstmdb metrics</title></head><body><h1>rstmdb</h1>"
    b'<p><a href="/metrics">Metrics</a></p></body></html>\n'
)
_HEADER_LIMIT = 16 * 1024


def _route(metrics: ServerMetrics, path: str) -> tuple[str, str, bytes]:
    path = path.split("?", 1)[0]
    if path == "/metrics":
        return "200 OK", CONTENT_TYPE_PLAIN_0_0_4, metrics.render()
    if path in ("/health", "/healthz"):
        return "200 OK", "text/plain; charset=utf-8", b"OK"
    if path == "/":
        return "200 OK", "text/html; charset=utf-8", _INDEX
    return "404 Not Found", "text/plain; charset=utf-8", b"Not Found"


async def _read_head(reader: asyncio.StreamReader) -> str:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = request_line.split(" ")
    return parts[1] if len(parts) >= 2 else "/"


async def _serve_http(
    metrics: ServerMetrics, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        path = await _read_head(reader)
        status, content_type, body = _route(metrics, path)
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode("latin-1") + body)
        await writer.drain()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
        pass
    except Exception:
        log.exception("metrics request failed")
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def start_metrics_listener(
    metrics: ServerMetrics, host: str, port: int
) -> asyncio.base_events.Server:
    """Listen for scrapes on ``host:port``; raises ``OSError`` if it cannot bind."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve_http(metrics, reader, writer)

    return await asyncio.start_server(handle, host, port, limit=_HEADER_LIMIT)
