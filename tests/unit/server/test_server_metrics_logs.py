"""Metrics registry contents and log formatting."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from pyrstmdb import Database
from pyrstmdb.config import LoggingConfig
from pyrstmdb.protocol import Operation
from pyrstmdb.server import logs
from pyrstmdb.server.metrics import ServerMetrics

ORDER = {
    "states": ["a", "b"],
    "initial": "a",
    "transitions": [{"from": "a", "event": "GO", "to": "b"}],
}


def value(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{series} missing")


def test_metrics_names_and_scrape_time_values() -> None:
    db = Database()
    metrics = ServerMetrics(db.core, lambda: {"instance": 2, "all": 1, "events_all": 7})
    text = metrics.render().decode()
    assert value(text, "rstmdb_instances_total") == 0
    db.put_machine("m", 1, ORDER)
    db.create_instance("m", 1, instance_id="a")
    db.create_instance("m", 1, instance_id="b")
    db.delete_instance("b")
    metrics.connection_opened()
    metrics.connection_opened()
    metrics.connection_closed()
    metrics.connection_rejected()
    metrics.requested(Operation.BATCH, {"ops": [{"op": "APPLY_EVENT"}, {"op": "NOPE"}, 3]})
    metrics.failed("CONFLICT")
    metrics.observe(Operation.PING, 0.002)
    text = metrics.render().decode()
    assert value(text, "rstmdb_instances_total") == 1
    assert value(text, "rstmdb_machines_total") == 1
    assert value(text, "rstmdb_wal_entries") == db.wal_stats().entry_count == 4
    assert value(text, "rstmdb_connections_total") == 2
    assert value(text, "rstmdb_connections_active") == 1
    assert value(text, "rstmdb_connections_rejected_total") == 1
    assert value(text, 'rstmdb_requests_total{operation="BATCH"}') == 1
    assert value(text, 'rstmdb_requests_total{operation="APPLY_EVENT"}') == 1
    assert value(text, 'rstmdb_errors_total{code="CONFLICT"}') == 1
    assert value(text, 'rstmdb_request_duration_seconds_bucket{le="0.005",operation="PING"}') == 1
    assert value(text, 'rstmdb_request_duration_seconds_bucket{le="0.001",operation="PING"}') == 0
    assert value(text, 'rstmdb_subscriptions_active{type="instance"}') == 2
    assert value(text, 'rstmdb_events_forwarded_total{type="all"}') == 7
    for name in (
        "rstmdb_wal_segments",
        "rstmdb_wal_size_bytes",
        "rstmdb_wal_bytes_written_total",
        "rstmdb_wal_bytes_read_total",
        "rstmdb_wal_writes_total",
        "rstmdb_wal_reads_total",
        "rstmdb_wal_fsyncs_total",
    ):
        assert f"\n{name} " in text
    assert "_created" not in text


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    logger = logging.getLogger("pyrstmdb")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def emit(fmt: str, level: str = "info") -> str:
    stream = io.StringIO()
    logs.configure(LoggingConfig(level=level, format=fmt), stream)  # type: ignore[arg-type]
    logger = logging.getLogger("pyrstmdb.server.test")
    logger.debug("hidden at info")
    logger.warning("disk %s", "slow")
    try:
        raise ValueError("bad")
    except ValueError:
        logger.exception("failed")
    return stream.getvalue()


def test_json_log_lines() -> None:
    lines = emit("json").splitlines()
    assert len(lines) == 2
    first, second = (orjson.loads(line) for line in lines)
    assert (first["level"], first["target"], first["message"]) == (
        "WARN",
        "pyrstmdb.server.test",
        "disk slow",
    )
    assert first["ts"].endswith("Z")
    assert "ValueError: bad" in second["error"]


def test_text_log_lines_and_level() -> None:
    text = emit("text", level="debug")
    assert "DEBUG pyrstmdb.server.test: hidden at info" in text
    assert " WARN pyrstmdb.server.test: disk slow" in text
    assert "Traceback" in text
    assert emit("text", level="error").count("\n") >= 1
    assert "disk slow" not in emit("text", level="error")
