"""Replay from ``from_offset`` over real connections (SEMANTICS ⚑S16, DECISIONS 18).

A durable history is written through BATCH; a subscriber then asks for it from
an offset in the middle while another connection keeps writing for the whole
catch-up. It must get every matching past event with the ctx it had when it was
written, then the live ones: in offset order, no gap, no duplicate. After
COMPACT deleted the oldest segments, the WATCH result says where history now
starts and that the request reached below it.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from server_harness import ServerProcess
from sub_wire import TICKET, TOGGLE, Json, WireClient, put_machines

from pyrstmdb.protocol import ClientCodec, Event, Notice, Response, request_message

FIRST_OFFSET = 1 << 40
TOGGLES = 90  # instances h0..h89 (machine toggle); h90..h99 are tickets
INSTANCES = 100
HISTORY_BATCHES = 200  # x INSTANCES events
TICKET_CYCLE = ("PAY", "CLOSE", "REOPEN")
WINDOW = 32


@dataclass
class Written:
    """One applied event, as its writer was told."""

    offset: int
    instance_id: str
    machine: str
    event: str
    ctx: Json


@dataclass
class Ledger:
    """Every applied event of the module's server, by offset."""

    events: dict[int, Written] = field(default_factory=dict)

    def add(self, instance_id: str, event: str, result: Json) -> None:
        machine = "toggle" if int(instance_id[1:]) < TOGGLES else "ticket"
        offset = result["wal_offset"]
        assert offset not in self.events
        self.events[offset] = Written(offset, instance_id, machine, event, result["ctx"])

    def since(self, offset: int, keep: Callable[[Written], bool]) -> list[Written]:
        return [w for o, w in sorted(self.events.items()) if o >= offset and keep(w)]


def history_op(batch: int, i: int) -> Json:
    event = "GO" if i < TOGGLES else TICKET_CYCLE[batch % len(TICKET_CYCLE)]
    payload = {"n": batch, "who": i, f"k{batch % 5}": batch}
    return {
        "op": "APPLY_EVENT",
        "params": {"instance_id": f"h{i}", "event": event, "payload": payload},
    }


async def write_history(client: WireClient, ledger: Ledger, batches: range) -> None:
    pending = [
        (
            b,
            client.send(
                "BATCH", {"mode": "atomic", "ops": [history_op(b, i) for i in range(INSTANCES)]}
            ),
        )
        for b in batches
    ]
    for b, future in pending:
        response = await asyncio.wait_for(future, 60)
        assert response["status"] == "ok", response
        for i, item in enumerate(response["result"]["results"]):
            op = history_op(b, i)["params"]
            ledger.add(op["instance_id"], op["event"], item["result"])


@pytest.fixture(scope="module")
def history(rstmdb_module_server: Callable[..., ServerProcess]) -> tuple[ServerProcess, Ledger]:
    server = rstmdb_module_server()
    ledger = Ledger()

    async def setup() -> None:
        client = await WireClient.open(server.host, server.port)
        await put_machines(client, [("toggle", 1, TOGGLE), ("ticket", 1, TICKET)])
        for i in range(INSTANCES):
            machine = "toggle" if i < TOGGLES else "ticket"
            client.send(
                "CREATE_INSTANCE", {"machine": machine, "version": 1, "instance_id": f"h{i}"}
            )
        await client.call("PING")
        await write_history(client, ledger, range(HISTORY_BATCHES))
        await client.close()

    asyncio.run(setup())
    return server, ledger


class Writer:
    """Keeps ``WINDOW`` applies in flight on toggle instances until told to stop."""

    def __init__(self, client: WireClient, ledger: Ledger, instances: list[str]) -> None:
        self.client = client
        self.ledger = ledger
        self.instances = instances
        self.written = 0
        self.stop_after: int | None = None  # stop once this many were written

    async def run(self, cap: int = 60_000) -> None:
        n = 0
        while self.written < cap and (self.stop_after is None or self.written < self.stop_after):
            requests = []
            for _ in range(WINDOW):
                instance_id = self.instances[n % len(self.instances)]
                params = {"instance_id": instance_id, "event": "GO", "payload": {"live": n}}
                requests.append((instance_id, self.client.send("APPLY_EVENT", params)))
                n += 1
            for instance_id, future in requests:
                response = await asyncio.wait_for(future, 30)
                assert response["status"] == "ok", response
                self.ledger.add(instance_id, "GO", response["result"])
                self.written += 1


async def replay_while_writing(
    server: ServerProcess, ledger: Ledger, op: str, params: Json, keep: Callable[[Written], bool]
) -> tuple[Json, list[Json], list[Written]]:
    """WATCH with ``params`` while a writer runs from before the request until well after
    the catch-up reached the live end; returns the result, the events, the expected ones."""
    watcher = await WireClient.open(server.host, server.port)
    client = await WireClient.open(server.host, server.port)
    writer = Writer(client, ledger, [f"h{i}" for i in range(0, TOGGLES, 3)])
    writing = asyncio.ensure_future(writer.run())
    while writer.written < 2 * WINDOW:  # writes are already racing the WATCH
        await asyncio.sleep(0.005)
    result = await watcher.call(op, params)
    head = result.get("wal_offset", result.get("current_wal_offset", 0))
    await watcher.wait_until(
        lambda: bool(watcher.pushed) and watcher.pushed[-1]["wal_offset"] > head, 30
    )
    assert not writing.done(), "the writer must still be writing when the catch-up ends"
    writer.stop_after = writer.written + 20 * WINDOW  # and go on live for a while
    await asyncio.wait_for(writing, 60)
    expected = ledger.since(params["from_offset"], keep)
    last = expected[-1].offset
    await watcher.wait_until(lambda: watcher.pushed[-1]["wal_offset"] >= last, 30)
    await asyncio.sleep(0.1)
    await watcher.close()
    await client.close()
    return result, watcher.pushed, expected


def assert_same_stream(events: list[Json], expected: list[Written], sub: str, ctx: bool) -> None:
    offsets = [e["wal_offset"] for e in events]
    assert len(offsets) == len(set(offsets)), "duplicate events"
    assert offsets == [w.offset for w in expected]
    for event, written in zip(events, expected, strict=True):
        assert event["subscription_id"] == sub
        assert (event["instance_id"], event["machine"], event["event"]) == (
            written.instance_id,
            written.machine,
            written.event,
        )
        if ctx:
            assert event["ctx"] == written.ctx  # the ctx of its time, not today's
        else:
            assert "ctx" not in event


def test_watch_all_from_offset_replays_then_goes_live_without_gap(
    history: tuple[ServerProcess, Ledger],
) -> None:
    server, ledger = history
    past = sorted(ledger.events)
    from_offset = past[len(past) // 3]

    async def main() -> None:
        params = {"machines": ["toggle"], "from_offset": from_offset}
        started = time.monotonic()
        result, events, expected = await replay_while_writing(
            server, ledger, "WATCH_ALL", params, lambda w: w.machine == "toggle"
        )
        assert time.monotonic() - started < 40
        assert set(result) == {
            "subscription_id",
            "wal_offset",
            "history_start",
            "history_truncated",
        }
        assert (result["history_start"], result["history_truncated"]) == (FIRST_OFFSET, False)
        replayed = [w for w in expected if w.offset < result["wal_offset"]]
        assert len(replayed) > 10_000 and len(expected) - len(replayed) > 20 * WINDOW
        assert_same_stream(events, expected, result["subscription_id"], ctx=True)

    asyncio.run(main())


def test_watch_instance_from_offset_replays_its_own_history(
    history: tuple[ServerProcess, Ledger],
) -> None:
    server, ledger = history
    mine = "h3"  # written to by the history and by the racing writer
    own = sorted(o for o, w in ledger.events.items() if w.instance_id == mine)
    from_offset = own[len(own) // 4] - 1  # inside the record before: still inclusive of own[k]

    async def main() -> None:
        params = {"instance_id": mine, "from_offset": from_offset, "include_ctx": False}
        result, events, expected = await replay_while_writing(
            server, ledger, "WATCH_INSTANCE", params, lambda w: w.instance_id == mine
        )
        assert result["instance_id"] == mine and result["history_truncated"] is False
        assert expected[0].offset == own[len(own) // 4]
        assert_same_stream(events, expected, result["subscription_id"], ctx=False)

    asyncio.run(main())


# -- after COMPACT deleted the oldest segments -----------------------------------------------

PAD = "p" * 3000


def test_watch_below_compacted_history_reports_where_it_starts(
    rstmdb_server: Callable[..., ServerProcess],
) -> None:
    server = rstmdb_server(
        env={"RSTMDB_WAL_SEGMENT_SIZE_MB": "1", "RSTMDB_COMPACT_ENABLED": "false"}
    )

    async def main() -> None:
        client = await WireClient.open(server.host, server.port)
        await put_machines(client, [("toggle", 1, TOGGLE)])
        ids = [f"c{i}" for i in range(10)]
        for instance_id in ids:
            await client.call(
                "CREATE_INSTANCE", {"machine": "toggle", "version": 1, "instance_id": instance_id}
            )
        ledger: dict[int, tuple[str, Json]] = {}

        async def apply_round(n: int, pad: str) -> None:
            ops = [
                {
                    "op": "APPLY_EVENT",
                    "params": {"instance_id": i, "event": "GO", "payload": {"n": n, "pad": pad}},
                }
                for i in ids
            ]
            result = await client.call("BATCH", {"mode": "atomic", "ops": ops})
            for instance_id, item in zip(ids, result["results"], strict=True):
                ledger[item["result"]["wal_offset"]] = (instance_id, item["result"]["ctx"])

        for n in range(150):  # about 9 MB of records: several 1 MiB segments
            await apply_round(n, PAD)
        await apply_round(150, "")  # every instance's latest record is in the newest segment
        stats = await client.call("WAL_STATS")
        assert stats["segment_count"] >= 4
        compacted = await client.call("COMPACT", {"force_snapshot": True})
        assert compacted["segments_deleted"] >= 3
        oldest = (await client.call("WAL_READ", {"from_offset": 0, "limit": 1}))["records"][0][
            "offset"
        ]
        assert oldest > FIRST_OFFSET

        watcher = await WireClient.open(server.host, server.port)
        below = await watcher.call("WATCH_ALL", {"from_offset": 0})
        one = await watcher.call(
            "WATCH_INSTANCE",
            {"instance_id": "c4", "from_offset": FIRST_OFFSET, "include_ctx": False},
        )
        exact = await watcher.call("WATCH_ALL", {"from_offset": oldest})
        plain = await watcher.call("WATCH_ALL", {})
        assert (below["history_start"], below["history_truncated"]) == (oldest, True)
        assert (one["history_start"], one["history_truncated"]) == (oldest, True)
        assert (exact["history_start"], exact["history_truncated"]) == (oldest, False)
        assert set(plain) == {"subscription_id", "wal_offset"}

        await apply_round(151, "")
        kept = sorted(o for o in ledger if o >= oldest)
        want = {
            below["subscription_id"]: kept,
            one["subscription_id"]: [o for o in kept if ledger[o][0] == "c4"],
            exact["subscription_id"]: kept,
            plain["subscription_id"]: kept[-len(ids) :],
        }
        total = sum(len(v) for v in want.values())
        await watcher.wait_pushed(total, 30)
        await asyncio.sleep(0.1)
        assert all(m["type"] == "event" for m in watcher.pushed)  # no notice: nothing was owed
        for sub, offsets in want.items():
            mine = [m for m in watcher.pushed if m["subscription_id"] == sub]
            assert [m["wal_offset"] for m in mine] == offsets
        for m in watcher.pushed:
            if "ctx" in m:
                assert m["ctx"] == ledger[m["wal_offset"]][1]
        await watcher.close()
        await client.close()

    asyncio.run(main())


def test_a_stalled_subscriber_whose_history_was_compacted_gets_a_notice_then_the_rest(
    rstmdb_server: Callable[..., ServerProcess],
) -> None:
    server = rstmdb_server(
        env={
            "RSTMDB_WAL_SEGMENT_SIZE_MB": "1",
            "RSTMDB_COMPACT_ENABLED": "false",
            "RSTMDB_SUBSCRIPTION_BUFFER": "16",
        }
    )
    ids = [f"c{i}" for i in range(10)]
    codec = ClientCodec()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(30)

    async def write() -> tuple[list[int], int]:
        client = await WireClient.open(server.host, server.port)
        await put_machines(client, [("toggle", 1, TOGGLE)])
        for instance_id in ids:
            await client.call(
                "CREATE_INSTANCE", {"machine": "toggle", "version": 1, "instance_id": instance_id}
            )
        sock.connect((server.host, server.port))
        sock.sendall(codec.encode(request_message("1", "WATCH_ALL", {})))
        (watched,) = codec.feed(sock.recv(65536))
        assert isinstance(watched, Response) and watched.ok
        offsets: list[int] = []
        for n in range(151):  # about 9 MB, the last round small
            ops = [
                {
                    "op": "APPLY_EVENT",
                    "params": {"instance_id": i, "event": "GO", "payload": {"n": n, "pad": PAD}},
                }
                for i in ids
            ]
            if n == 150:
                for op in ops:
                    del op["params"]["payload"]
            result = await client.call("BATCH", {"mode": "atomic", "ops": ops})
            offsets += [item["result"]["wal_offset"] for item in result["results"]]
        compacted = await client.call("COMPACT", {"force_snapshot": True})
        assert compacted["segments_deleted"] >= 5
        first = await client.call("WAL_READ", {"from_offset": 0, "limit": 1})
        await client.close()
        return offsets, first["records"][0]["offset"]

    try:
        written, oldest = asyncio.run(write())
        messages: list[Response | Event | Notice] = []
        while not messages or messages[-1].fields.get("wal_offset") != written[-1]:  # type: ignore[union-attr]
            data = sock.recv(1 << 20)
            assert data, "server closed the connection"
            messages.extend(codec.feed(data))
    finally:
        sock.close()
    assert not any(isinstance(m, Response) for m in messages)
    (cut,) = [i for i, m in enumerate(messages) if isinstance(m, Notice)]
    before = [m.fields["wal_offset"] for m in messages[:cut] if isinstance(m, Event)]
    after = [m.fields["wal_offset"] for m in messages[cut + 1 :] if isinstance(m, Event)]
    assert before == written[: len(before)] and before[-1] < oldest
    sub = messages[0].fields["subscription_id"]  # type: ignore[union-attr]
    assert messages[cut].fields == {  # type: ignore[union-attr]
        "type": "notice",
        "subscription_id": sub,
        "code": "HISTORY_LOST",
        "lost_from": written[len(before)],
        "resumed_at": oldest,
    }
    assert after == [o for o in written if o >= oldest]


@pytest.mark.slow
def test_replay_after_a_crash_comes_from_the_log_then_live(
    rstmdb_server: Callable[..., ServerProcess],
) -> None:
    server = rstmdb_server()

    async def before_crash() -> dict[int, Json]:
        client = await WireClient.open(server.host, server.port)
        await put_machines(client, [("toggle", 1, TOGGLE), ("ticket", 1, TICKET)])
        await client.call(
            "CREATE_INSTANCE", {"machine": "ticket", "version": 1, "instance_id": "t"}
        )
        await client.call(
            "CREATE_INSTANCE", {"machine": "toggle", "version": 1, "instance_id": "g"}
        )
        written: dict[int, Json] = {}
        for n in range(30):
            instance_id, event = ("t", TICKET_CYCLE[n // 2 % 3]) if n % 2 else ("g", "GO")
            params = {"instance_id": instance_id, "event": event, "payload": {f"k{n % 4}": n}}
            result = await client.call("APPLY_EVENT", params)
            written[result["wal_offset"]] = {"instance_id": instance_id, "ctx": result["ctx"]}
        await client.close()
        return written

    async def after_restart(written: dict[int, Json]) -> None:
        watcher = await WireClient.open(server.host, server.port)
        everything = await watcher.call("WATCH_ALL", {"from_offset": 0})
        tickets = await watcher.call("WATCH_INSTANCE", {"instance_id": "t", "from_offset": 0})
        assert everything["history_truncated"] is False
        client = await WireClient.open(server.host, server.port)
        live = await client.call("APPLY_EVENT", {"instance_id": "g", "event": "GO"})
        written[live["wal_offset"]] = {"instance_id": "g", "ctx": live["ctx"]}
        offsets = sorted(written)
        ticket_offsets = [o for o in offsets if written[o]["instance_id"] == "t"]
        await watcher.wait_pushed(len(offsets) + len(ticket_offsets))
        await asyncio.sleep(0.1)
        streams: dict[str, list[Json]] = {}
        for message in watcher.pushed:
            streams.setdefault(message["subscription_id"], []).append(message)
        assert [m["wal_offset"] for m in streams[everything["subscription_id"]]] == offsets
        assert [m["wal_offset"] for m in streams[tickets["subscription_id"]]] == ticket_offsets
        for message in watcher.pushed:
            assert message["ctx"] == written[message["wal_offset"]]["ctx"]
            machine = "ticket" if message["instance_id"] == "t" else "toggle"
            assert (message["machine"], message["version"]) == (machine, 1)
        await watcher.close()
        await client.close()

    written = asyncio.run(before_crash())
    server.restart()  # SIGKILL, then a new process on the same data directory
    asyncio.run(after_restart(written))
