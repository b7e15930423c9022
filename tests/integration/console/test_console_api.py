"""The console's read routes over HTTP: layout, per-state counts, instances by version."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
from console_harness import ConsoleServer, start_console_server

from pyrstmdb.client.sync import Client

MACHINE = {
    "states": ["a", "b", "c"],
    "initial": "a",
    "transitions": [
        {"from": "a", "event": "GO", "to": "b", "guard": "ctx.ok"},
        {"from": ["a", "b"], "event": "STOP", "to": "c"},
    ],
}


def test_layout_counts_and_instances(console_server: ConsoleServer) -> None:
    with Client(console_server.rcp_address) as client:
        client.put_machine("m", 1, MACHINE)
        client.put_machine("m", 2, MACHINE)
        for n in range(5):
            client.create_instance("m", 1 + n % 2, instance_id=f"i{n}", initial_ctx={"ok": True})
        client.apply_event("i0", "GO")
        client.apply_event("i2", "STOP")
        client.delete_instance("i4")
    with httpx.Client(base_url=console_server.url) as http:
        layout = http.get("/v1/console/machines/m/versions/1/layout").json()
        assert [n["id"] for n in layout["nodes"]] == ["a", "b", "c"]
        assert [e["label"] for e in layout["edges"]] == ["GO [ctx.ok]", "STOP"]
        assert layout["edges"][1]["from"] == ["a", "b"]
        assert layout["checksum"] == http.get("/v1/machines/m/versions/1").json()["checksum"]

        counts = http.get("/v1/console/machines/m/versions/1/counts").json()
        assert counts == {
            "machine": "m",
            "version": 1,
            "states": {"a": 0, "b": 1, "c": 1},
            "total": 2,
        }

        page = http.get("/v1/console/instances", params={"machine": "m", "version": 2}).json()
        assert [i["id"] for i in page["instances"]] == ["i3", "i1"]
        assert page["total"] == 2 and page["has_more"] is False
        first = http.get("/v1/console/instances", params={"limit": 1, "offset": 0}).json()
        assert first["total"] == 4 and first["has_more"] is True
        assert first["instances"][0]["id"] == "i2"  # the most recently changed

        missing = http.get("/v1/console/machines/nope/versions/1/layout")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "MACHINE_NOT_FOUND"
        bad = http.get("/v1/console/machines/m/versions/-1/counts")
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "BAD_REQUEST"
        bad = http.get("/v1/console/instances", params={"limit": "many"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "BAD_REQUEST"
        spec = http.get("/openapi.json").json()
        assert "/v1/console/machines/{machine}/versions/{version}/layout" in spec["paths"]


def test_console_routes_need_the_token(tmp_path: Path) -> None:
    token = "t0ken"
    env = {
        "RSTMDB_AUTH_REQUIRED": "true",
        "RSTMDB_AUTH_TOKEN_HASH": hashlib.sha256(token.encode()).hexdigest(),
    }
    server = start_console_server(tmp_path, env=env)
    try:
        with httpx.Client(base_url=server.url) as http:
            assert http.get("/").status_code == 200  # the console's files are public
            denied = http.get("/v1/console/instances")
            assert denied.status_code == 401
            assert denied.json()["error"]["code"] == "UNAUTHORIZED"
            wrong = http.get("/v1/console/instances", headers={"Authorization": "Bearer x"})
            assert wrong.json()["error"]["code"] == "AUTH_FAILED"
            ok = http.get("/v1/console/instances", headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200 and ok.json()["total"] == 0
    finally:
        server.process.kill()
