"""A subscriber that stops reading its socket while 100,000 durable events are written.

The subscriber is a plain blocking socket: it sends WATCH_ALL, reads the
response, then reads nothing while other connections write 100,000 events
through pipelined BATCH requests (``every_write``: each batch is fsynced before
its response). Meanwhile the server's resident memory is sampled from
``/proc/<pid>/status``. Then the subscriber reads again: it must receive all
100,000 events, each once, in offset order, although far more bytes were owed
than any socket or transport buffer holds. The server keeps only a bounded
buffer per subscriber and re-reads the rest from its log, so its memory stays
well below what holding the backlog would cost.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from server_harness import ServerProcess
from sub_wire import TOGGLE, WireClient, put_machines, rss_bytes

from pyrstmdb.protocol import ClientCodec, Event, Response, request_message

INSTANCES = 100
BATCHES = 1_000  # x INSTANCES events
EVENTS = INSTANCES * BATCHES
IN_FLIGHT = 8  # batches in flight per writer connection
WRITERS = 2
NOTE = "n" * 120  # each event is about 500 bytes on the wire, ctx included
RSS_GROWTH_LIMIT = 60 * 1024 * 1024
MB = 1024 * 1024
RECEIVE_BUFFER = 64 * 1024


@dataclass
class Sampler:
    """Samples a process's RSS every few milliseconds in a thread while running."""

    pid: int
    samples: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        self.samples.append(rss_bytes(self.pid))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.samples.append(rss_bytes(self.pid))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(5)
        self.samples.append(rss_bytes(self.pid))


async def write_events(server: ServerProcess) -> list[int]:
    """Write EVENTS applied events over WRITERS connections; their offsets, ascending."""
    clients = [await WireClient.open(server.host, server.port) for _ in range(WRITERS)]
    offsets: list[int] = []

    async def writer(client: WireClient, batches: range) -> None:
        window: list[asyncio.Future[dict[str, object]]] = []
        for b in batches:
            ops = [
                {
                    "op": "APPLY_EVENT",
                    "params": {
                        "instance_id": f"s{i}",
                        "event": "GO",
                        "payload": {"batch": b, "note": NOTE},
                    },
                }
                for i in range(INSTANCES)
            ]
            window.append(client.send("BATCH", {"mode": "atomic", "ops": ops}))
            if len(window) >= IN_FLIGHT:
                await collect(window.pop(0))
        for future in window:
            await collect(future)

    async def collect(future: asyncio.Future[dict[str, object]]) -> None:
        response = await asyncio.wait_for(future, 60)
        assert response["status"] == "ok", response
        result = response["result"]
        assert isinstance(result, dict)
        offsets.extend(item["result"]["wal_offset"] for item in result["results"])

    share = BATCHES // WRITERS
    await asyncio.gather(
        *(writer(c, range(n * share, (n + 1) * share)) for n, c in enumerate(clients))
    )
    for client in clients:
        await client.close()
    return sorted(offsets)


async def prepare(server: ServerProcess) -> None:
    client = await WireClient.open(server.host, server.port)
    await put_machines(client, [("toggle", 1, TOGGLE)])
    for i in range(INSTANCES):
        client.send("CREATE_INSTANCE", {"machine": "toggle", "version": 1, "instance_id": f"s{i}"})
    await client.call("PING")
    await client.close()


def small_window_socket(server: ServerProcess) -> socket.socket:
    """A connection whose receive buffer is small, so the server has to hold what it owes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    sock.settimeout(10)
    sock.connect((server.host, server.port))
    return sock


def read_events(sock: socket.socket, codec: ClientCodec, count: int) -> tuple[list[int], int]:
    """Read ``count`` events; their offsets and the bytes they took on the wire."""
    offsets: list[int] = []
    received = 0
    sock.settimeout(30)
    while len(offsets) < count:
        data = sock.recv(1 << 20)
        assert data, f"server closed after {len(offsets)} events"
        received += len(data)
        for message in codec.feed(data):
            assert isinstance(message, Event), message
            offsets.append(message.fields["wal_offset"])
    return offsets, received


@pytest.mark.slow
def test_stalled_subscriber_gets_all_100k_events_with_bounded_server_memory(
    rstmdb_server: Callable[..., ServerProcess],
) -> None:
    server = rstmdb_server(env={"RSTMDB_FSYNC_POLICY": "every_write"})
    asyncio.run(prepare(server))
    codec = ClientCodec()
    sock = small_window_socket(server)
    try:
        sock.sendall(codec.encode(request_message("1", "WATCH_ALL", {"machines": ["toggle"]})))
        response = codec.feed(sock.recv(65536))
        assert len(response) == 1 and isinstance(response[0], Response) and response[0].ok
        assert server.proc is not None
        started = time.monotonic()
        with Sampler(server.proc.pid) as sampler:
            written = asyncio.run(write_events(server))
        write_seconds = time.monotonic() - started
        baseline, peak = sampler.samples[0], max(sampler.samples)
        assert len(written) == EVENTS

        started = time.monotonic()
        with Sampler(server.proc.pid) as draining:
            offsets, wire_bytes = read_events(sock, codec, EVENTS)
        read_seconds = time.monotonic() - started
    finally:
        sock.close()

    assert offsets == written  # every event, once, in offset order
    print(
        f"\nslow consumer: wrote {EVENTS} events in {write_seconds:.1f} s, read them in "
        f"{read_seconds:.1f} s ({wire_bytes / MB:.1f} MB on the wire); server RSS "
        f"{baseline / MB:.1f} MB before, peak {peak / MB:.1f} MB while writing "
        f"(+{(peak - baseline) / MB:.1f} MB), peak {max(draining.samples) / MB:.1f} MB "
        f"while the subscriber caught up"
    )
    assert wire_bytes > 40 * MB  # far more than the socket and transport buffers hold
    assert peak - baseline < RSS_GROWTH_LIMIT
    assert max(draining.samples) - baseline < RSS_GROWTH_LIMIT
