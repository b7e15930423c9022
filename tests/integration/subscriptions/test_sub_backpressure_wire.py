"""Subscribers that read in fits and starts, or stop, while writes go on.

* A subscriber holding three subscriptions (everything, an event filter, one
  instance) alternates between reading at full speed and not reading at all
  while a writer keeps writing: it falls behind and catches up again several
  times, live writes racing each switch. Every subscription still receives its
  own complete stream, in offset order, with no duplicate.
* UNWATCH sent by a stalled subscriber takes effect exactly at its response:
  every event of that subscription before the response, none after, and the
  other subscription on the connection is untouched.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable

import pytest
from server_harness import ServerProcess
from sub_wire import TOGGLE, Json, WireClient, put_machines

from pyrstmdb.protocol import ClientCodec, Event, Response, request_message

INSTANCES = 100
NOTE = "x" * 400  # about 1.1 kB per event with its ctx: stalls soon overflow every buffer
RECEIVE_BUFFER = 64 * 1024


def stalled_socket(server: ServerProcess) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    sock.settimeout(10)
    sock.connect((server.host, server.port))
    return sock


def watch(sock: socket.socket, codec: ClientCodec, requests: list[tuple[str, Json]]) -> list[str]:
    """Send the WATCH requests and return their subscription ids (nothing is written yet)."""
    ids = []
    for n, (op, params) in enumerate(requests, 1):
        sock.sendall(codec.encode(request_message(str(n), op, params)))
        (response,) = codec.feed(sock.recv(65536))
        assert isinstance(response, Response) and response.ok and response.result is not None
        ids.append(response.result["subscription_id"])
    return ids


async def prepare(server: ServerProcess) -> None:
    client = await WireClient.open(server.host, server.port)
    await put_machines(client, [("toggle", 1, TOGGLE)])
    for i in range(INSTANCES):
        client.send("CREATE_INSTANCE", {"machine": "toggle", "version": 1, "instance_id": f"b{i}"})
    await client.call("PING")
    await client.close()


def go(i: int, n: int) -> Json:
    return {
        "op": "APPLY_EVENT",
        "params": {"instance_id": f"b{i}", "event": "GO", "payload": {"n": n, "note": NOTE}},
    }


async def write(server: ServerProcess, batches: int, pause: float) -> list[tuple[int, str, str]]:
    """``batches`` BATCH requests of one event per instance, ``pause`` seconds apart;
    (offset, instance, to_state) of every event, ascending."""
    client = await WireClient.open(server.host, server.port)
    written: list[tuple[int, str, str]] = []
    futures = []
    for n in range(batches):
        futures.append(
            client.send("BATCH", {"mode": "atomic", "ops": [go(i, n) for i in range(INSTANCES)]})
        )
        await asyncio.sleep(pause)
    for future in futures:
        response = await asyncio.wait_for(future, 60)
        assert response["status"] == "ok", response
        for i, item in enumerate(response["result"]["results"]):
            written.append((item["result"]["wal_offset"], f"b{i}", item["result"]["to_state"]))
    await client.close()
    return sorted(written)


class FitfulReader(threading.Thread):
    """Alternates between reading at full speed for ``burst`` seconds and not reading until
    ``fell_behind()`` grew (at most ``max_stall`` seconds); once ``stopping`` is set it reads
    on until ``done(last)`` holds."""

    def __init__(
        self,
        sock: socket.socket,
        codec: ClientCodec,
        fell_behind: Callable[[], int],
        burst: float = 0.15,
        max_stall: float = 2.0,
    ) -> None:
        super().__init__(daemon=True)
        self.sock, self.codec, self.fell_behind = sock, codec, fell_behind
        self.burst, self.max_stall = burst, max_stall
        self.messages: list[Event | Response] = []
        self.last: dict[str, int] = {}  # the latest offset received per subscription
        self.done: Callable[[dict[str, int]], bool] = lambda _: False
        self.finished = threading.Event()
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._loop(time.monotonic() + 60)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.finished.set()

    def _loop(self, deadline: float) -> None:
        self.sock.settimeout(0.05)
        while time.monotonic() < deadline:
            until = time.monotonic() + self.burst
            while time.monotonic() < until or self.stopping.is_set():
                self._read()
                if self.stopping.is_set() and self.done(self.last):
                    return
                if time.monotonic() > deadline:
                    break
            if not self.stopping.is_set():
                self._stall()
        raise TimeoutError(f"only {len(self.messages)} messages arrived")

    def _read(self) -> None:
        try:
            data = self.sock.recv(1 << 18)
        except TimeoutError:
            return
        if not data:
            raise ConnectionError("server closed the connection")
        for message in self.codec.feed(data):
            self.messages.append(message)
            if isinstance(message, Event):
                self.last[message.fields["subscription_id"]] = message.fields["wal_offset"]

    def _stall(self) -> None:
        seen = self.fell_behind()
        until = time.monotonic() + self.max_stall
        while self.fell_behind() == seen and time.monotonic() < until:
            if self.stopping.wait(0.02):
                return


def stream_of(messages: list[Event | Response], sub: str) -> list[int]:
    return [
        m.fields["wal_offset"]
        for m in messages
        if isinstance(m, Event) and m.fields["subscription_id"] == sub
    ]


@pytest.mark.slow
def test_fitful_reader_gets_every_stream_complete_while_writes_continue(
    rstmdb_server: Callable[..., ServerProcess],
) -> None:
    server = rstmdb_server(env={"RSTMDB_LOG_LEVEL": "debug", "RSTMDB_LOG_FORMAT": "text"})
    asyncio.run(prepare(server))
    codec = ClientCodec()
    sock = stalled_socket(server)
    try:
        everything, to_b, one = watch(
            sock,
            codec,
            [
                ("WATCH_ALL", {}),
                ("WATCH_ALL", {"to_states": ["b"], "include_ctx": False}),
                ("WATCH_INSTANCE", {"instance_id": "b7"}),
            ],
        )
        reader = FitfulReader(sock, codec, lambda: server.log().count("fell behind"))
        reader.start()
        written = asyncio.run(write(server, batches=300, pause=0.008))
        expected = {
            everything: [o for o, _, _ in written],
            to_b: [o for o, _, state in written if state == "b"],
            one: [o for o, instance, _ in written if instance == "b7"],
        }
        reader.done = lambda last: all(last.get(s) == o[-1] for s, o in expected.items())
        reader.stopping.set()
        assert reader.finished.wait(60)
        assert reader.error is None, reader.error
    finally:
        sock.close()
    for sub, offsets in expected.items():
        assert stream_of(reader.messages, sub) == offsets
    fell_behind = server.log().count("fell behind")
    print(f"\nfitful reader: {len(reader.messages)} events, fell behind {fell_behind} times")
    assert fell_behind >= 2


@pytest.mark.slow
def test_unwatch_from_a_stalled_subscriber_cuts_exactly_at_its_response(
    rstmdb_server: Callable[..., ServerProcess],
) -> None:
    server = rstmdb_server()
    asyncio.run(prepare(server))
    codec = ClientCodec()
    sock = stalled_socket(server)
    try:
        cut, kept = watch(sock, codec, [("WATCH_ALL", {}), ("WATCH_ALL", {"to_states": ["a"]})])
        written = asyncio.run(write(server, batches=150, pause=0))
        sock.sendall(codec.encode(request_message("u1", "UNWATCH", {"subscription_id": cut})))
        sock.sendall(codec.encode(request_message("u2", "UNWATCH", {"subscription_id": cut})))
        messages: list[Event | Response] = []
        sock.settimeout(30)
        while sum(isinstance(m, Response) for m in messages) < 2:
            data = sock.recv(1 << 20)
            assert data, "server closed the connection"
            messages.extend(codec.feed(data))
        wanted_kept = [o for o, _, state in written if state == "a"]
        deadline = time.monotonic() + 30
        while stream_of(messages, kept)[-1:] != wanted_kept[-1:] and time.monotonic() < deadline:
            messages.extend(codec.feed(sock.recv(1 << 20)))
    finally:
        sock.close()
    first, second = (i for i, m in enumerate(messages) if isinstance(m, Response))
    assert messages[first] == Response("u1", True, {"subscription_id": cut, "removed": True}, None)
    assert messages[second] == Response(
        "u2", True, {"subscription_id": cut, "removed": False}, None
    )
    before = stream_of(messages[:first], cut)
    assert stream_of(messages[first:], cut) == []
    assert before == [o for o, _, _ in written][: len(before)]
    assert stream_of(messages, kept) == wanted_kept
