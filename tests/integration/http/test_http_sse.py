"""SSE streams: order without gaps, Last-Event-ID resume, keep-alives, notices, slow readers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from http_support import http_client
from server_harness import ServerProcess
from sse_support import Frame, frames, transitions

from pyrstmdb.client import Client

TOGGLE = {
    "states": ["off", "on"],
    "initial": "off",
    "transitions": [
        {"from": "off", "event": "FLIP", "to": "on"},
        {"from": "on", "event": "FLIP", "to": "off"},
    ],
}


def setup(client: httpx.Client, instances: int) -> None:
    assert client.put("/v1/machines/toggle/versions/1", json=TOGGLE).status_code == 201
    ops = [
        {
            "op": "CREATE_INSTANCE",
            "params": {"machine": "toggle", "version": 1, "instance_id": f"t{i}"},
        }
        for i in range(instances)
    ]
    assert client.post("/v1/batch", json={"ops": ops}).status_code == 200


def flip_all(
    client: httpx.Client, instances: int, payload: dict[str, Any] | None = None
) -> list[int]:
    """One FLIP per instance in one batch; the WAL offsets, in order."""
    params: dict[str, Any] = {"event": "FLIP"}
    if payload is not None:
        params["payload"] = payload
    ops = [
        {"op": "APPLY_EVENT", "params": {"instance_id": f"t{i}", **params}}
        for i in range(instances)
    ]
    response = client.post("/v1/batch", json={"ops": ops})
    assert response.status_code == 200, response.text
    return [item["result"]["wal_offset"] for item in response.json()["results"]]


def opened(stream: Iterator[Frame]) -> dict[str, Any]:
    first = next(stream)
    assert first.event == "subscribed" and first.fields.get("retry") == "1000"
    result: dict[str, Any] = first.json
    return result


def test_events_arrive_in_order_without_gaps(http_server: Callable[..., ServerProcess]) -> None:
    server = http_server()
    with http_client(server) as client:
        setup(client, 20)
        with client.stream("GET", "/v1/events") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = frames(response)
            opened(stream)
            written: list[int] = []
            for _ in range(10):
                written += flip_all(client, 20)
            got = transitions(stream, len(written))
    assert [int(f.id or -1) for f in got] == written
    for item in got:
        event = item.json
        assert event["type"] == "event" and event["wal_offset"] == int(item.id or -1)
        assert event["machine"] == "toggle" and event["event"] == "FLIP" and "ctx" in event


def test_filters_and_instance_stream(http_server: Callable[..., ServerProcess]) -> None:
    server = http_server()
    with http_client(server) as client:
        setup(client, 4)
        params = {"instances": "t1,t3", "to_states": "on", "include_ctx": "false"}
        with (
            client.stream("GET", "/v1/events", params=params) as all_events,
            client.stream("GET", "/v1/instances/t2/events/stream") as one,
        ):
            everything, single = frames(all_events), frames(one)
            opened(everything)
            assert opened(single)["current_state"] == "off"
            flip_all(client, 4)  # all on
            flip_all(client, 4)  # all off
            flip_all(client, 4)  # all on
            filtered = transitions(everything, 4)
            mine = transitions(single, 3)
    assert [f.json["instance_id"] for f in filtered] == ["t1", "t3", "t1", "t3"]
    assert all(f.json["to_state"] == "on" and "ctx" not in f.json for f in filtered)
    assert [f.json["instance_id"] for f in mine] == ["t2"] * 3
    assert [f.json["to_state"] for f in mine] == ["on", "off", "on"]


def test_unknown_instance_stream_is_404(http_server: Callable[..., ServerProcess]) -> None:
    server = http_server()
    with http_client(server) as client:
        response = client.get("/v1/instances/nobody/events/stream")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "INSTANCE_NOT_FOUND"
        bad = client.get("/v1/events", headers={"Last-Event-ID": "yesterday"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "BAD_REQUEST"


def test_last_event_id_resumes_exactly_and_wins(http_server: Callable[..., ServerProcess]) -> None:
    server = http_server()
    with http_client(server) as client:
        setup(client, 10)
        written: list[int] = []
        for _ in range(5):
            written += flip_all(client, 10)
        with client.stream("GET", "/v1/events", params={"from_offset": 0}) as first:
            stream = frames(first)
            opened(stream)
            seen = transitions(stream, 17)
        assert [int(f.id or -1) for f in seen] == written[:17]
        last = seen[-1].id
        assert last is not None
        written += flip_all(client, 10)
        # a browser's reconnect repeats the URL (from_offset=0) and adds Last-Event-ID
        headers = {"Last-Event-ID": last}
        with client.stream(
            "GET", "/v1/events", params={"from_offset": 0}, headers=headers
        ) as again:
            rest = transitions(frames(again), len(written) - 17)
    assert [int(f.id or -1) for f in rest] == written[17:]


@pytest.mark.slow
def test_keep_alive_comments(http_server: Callable[..., ServerProcess]) -> None:
    server = http_server(env={"RSTMDB_HTTP_SSE_KEEPALIVE": "1"})
    with http_client(server) as client, client.stream("GET", "/v1/events") as response:
        stream = frames(response)
        opened(stream)
        started = time.monotonic()
        comments = []
        for item in stream:
            if item.comment is not None:
                comments.append(time.monotonic() - started)
            if len(comments) == 3:
                break
    assert comments[-1] < 6.0
    assert all(b - a < 2.0 for a, b in zip([0.0, *comments], comments, strict=False))


def test_history_lost_notice(http_server: Callable[..., ServerProcess]) -> None:
    server = http_server(env={"RSTMDB_WAL_SEGMENT_SIZE_MB": "1", "RSTMDB_COMPACT_ENABLED": "false"})
    with http_client(server) as client:
        setup(client, 50)
        big = {"blob": "x" * 2000}
        for _ in range(30):  # ~3 MB: several segments
            flip_all(client, 50, big)
        compacted = client.post("/v1/admin/compact", json={"force_snapshot": True}).json()
        assert compacted["segments_deleted"] >= 1, compacted
        with client.stream("GET", "/v1/events", params={"from_offset": 0}) as response:
            stream = frames(response)
            result = opened(stream)
            notice = next(stream)
    assert result["history_truncated"] is True
    assert notice.event == "notice" and notice.id is None
    assert notice.json["code"] == "HISTORY_LOST"
    assert notice.json["lost_from"] == 0 and notice.json["resumed_at"] == result["history_start"]


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.slow
def test_stalled_reader_is_caught_up_with_bounded_memory(
    http_server: Callable[..., ServerProcess],
) -> None:
    server = http_server(env={"RSTMDB_SUBSCRIPTION_BUFFER": "256"})
    assert server.proc is not None
    instances, rounds = 20, 600  # 12,000 events of about 2 KB: 24 MB if held in memory
    payload = {"blob": "y" * 2000}
    with http_client(server) as client:
        setup(client, instances)
        with Client((server.host, server.port)) as rcp:
            flip = [
                {
                    "op": "APPLY_EVENT",
                    "params": {"instance_id": f"t{i}", "event": "FLIP", "payload": payload},
                }
                for i in range(instances)
            ]
            rcp.batch(flip, mode="best_effort")  # warm up allocations before measuring
            with client.stream("GET", "/v1/events") as response:
                # Headers read, body not: the reader stalls while the writes go on.
                before = _rss(server.proc.pid)
                written: list[int] = []
                for _ in range(rounds):
                    result = rcp.batch(flip, mode="best_effort")
                    written += [item.result.wal_offset for item in result.results]  # type: ignore[union-attr]
                growth = _rss(server.proc.pid) - before
                got = transitions(frames(response), len(written))
    assert growth < 12 * 1024 * 1024, growth
    assert [int(f.id or -1) for f in got] == written
