"""Loopback throughput and latency of the real ``rstmdb`` server process.

PING and durable APPLY_EVENT (``every_write``: each response waits for the
fsync covering it) with 1 connection, 32 connections, and 64 requests in flight
on one connection. The load comes from a small raw asyncio client in this
process (pre-encoded frames, responses only split and counted), not from the
official client, whose pure-Python CRC would be the bottleneck. Each scenario
runs for a fixed time; rates are completed requests per second and latencies
are per request, send to response.
"""

from __future__ import annotations

import asyncio
import os
import struct
import time
from collections.abc import Callable

import orjson

from bench.server_process import start_server
from pyrstmdb.protocol import encode_frame, request_message

SECONDS = 2.5
COUNTER = {
    "states": ["s"],
    "initial": "s",
    "transitions": [{"from": "s", "event": "INC", "to": "s"}],
}
_HEADER = struct.Struct(">4sHHHII")
Maker = Callable[[int], bytes]


def _frame(request_id: int, op: str, params: dict[str, object]) -> bytes:
    return encode_frame(orjson.dumps(request_message(str(request_id), op, params)))


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    header = await reader.readexactly(18)
    _, _, _, extension, size, _ = _HEADER.unpack(header)
    body = await reader.readexactly(extension + size)
    return body[extension:]


async def _connection(port: int, make: Maker, window: int, until: float) -> list[float]:
    """Keep ``window`` requests in flight until ``until``; returns per-request latencies."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent: list[float] = []
    latencies: list[float] = []
    clock = time.perf_counter
    n = 0
    for _ in range(window):
        writer.write(make(n))
        sent.append(clock())
        n += 1
    done = 0
    while done < n:
        payload = await _read_response(reader)
        if b'"status":"ok"' not in payload:
            raise RuntimeError(f"request failed: {payload[:200]!r}")
        latencies.append(clock() - sent[done])
        done += 1
        if clock() < until:
            writer.write(make(n))
            sent.append(clock())
            n += 1
    writer.close()
    await writer.wait_closed()
    return latencies


async def _scenario(port: int, makers: list[Maker], window: int) -> tuple[float, list[float]]:
    started = time.perf_counter()
    until = started + SECONDS
    results = await asyncio.gather(*[_connection(port, m, window, until) for m in makers])
    elapsed = time.perf_counter() - started
    latencies = [value for one in results for value in one]
    return len(latencies) / elapsed, latencies


def _ping(n: int) -> bytes:
    return _frame(n, "PING", {})


def _apply(instance_id: str) -> Maker:
    def make(n: int) -> bytes:
        return _frame(
            n, "APPLY_EVENT", {"instance_id": instance_id, "event": "INC", "payload": {"n": n}}
        )

    return make


async def _prepare(port: int, count: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_frame(0, "PUT_MACHINE", {"machine": "c", "version": 1, "definition": COUNTER}))
    for n in range(count):
        writer.write(
            _frame(n + 1, "CREATE_INSTANCE", {"machine": "c", "version": 1, "instance_id": f"i{n}"})
        )
    for _ in range(count + 1):
        await _read_response(reader)
    writer.close()
    await writer.wait_closed()


def _micros(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1_000_000


async def _all(port: int) -> list[tuple[str, float, str]]:
    await _prepare(port, 33)
    plans: list[tuple[str, list[Maker], int]] = [
        ("PING, 1 conn", [_ping], 1),
        ("PING, 32 conns", [_ping] * 32, 1),
        ("PING, 1 conn, 64 pipelined", [_ping], 64),
        ("APPLY_EVENT every_write, 1 conn", [_apply("i0")], 1),
        ("APPLY_EVENT every_write, 32 conns", [_apply(f"i{n}") for n in range(1, 33)], 1),
        ("APPLY_EVENT every_write, 1 conn, 64 pipelined", [_apply("i0")], 64),
    ]
    rows: list[tuple[str, float, str]] = []
    for label, makers, window in plans:
        rate, latencies = await _scenario(port, makers, window)
        rows.append((f"server {label}", rate, "req/s"))
        rows.append((f"server {label}: p50", _micros(latencies, 0.50), "us"))
        rows.append((f"server {label}: p99", _micros(latencies, 0.99), "us"))
    return rows


def run(tmpdir: str) -> list[tuple[str, float, str]]:
    proc, port = start_server(os.path.join(tmpdir, "data"))
    try:
        return asyncio.run(_all(port))
    finally:
        proc.terminate()
        proc.wait(timeout=15)
