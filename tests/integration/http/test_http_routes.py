"""Every route of the HTTP API against a real server: results, statuses and headers."""

from __future__ import annotations

import httpx

from conftest import ORDER


def create(api: httpx.Client, instance_id: str, amount: int = 10) -> httpx.Response:
    body = {"machine": "order", "version": 1, "instance_id": instance_id}
    body["initial_ctx"] = {"amount": amount}  # type: ignore[assignment]
    return api.post("/v1/instances", json=body)


def test_health_and_machines(api: httpx.Client) -> None:
    health = api.get("/health")
    assert health.json() == {"status": "ok"}
    assert health.headers["date"].endswith(" GMT") and "server" not in health.headers
    assert api.get("/v1/machines").json() == {"items": [{"machine": "order", "versions": [1]}]}
    again = api.put("/v1/machines/order/versions/1", json=ORDER)
    assert again.status_code == 200 and again.json()["created"] is False
    got = api.get("/v1/machines/order/versions/1")
    assert got.status_code == 200
    assert got.json()["definition"]["initial"] == "created"
    assert got.json()["checksum"] == again.json()["stored_checksum"]
    assert api.get("/v1/machines/order/versions/2").json()["error"]["code"] == "MACHINE_NOT_FOUND"


def test_machine_version_exists_is_409(api: httpx.Client) -> None:
    other = {**ORDER, "initial": "paid"}
    response = api.put("/v1/machines/order/versions/1", json=other)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "MACHINE_VERSION_EXISTS"


def test_diagram_route(api: httpx.Client) -> None:
    mermaid = api.get("/v1/machines/order/versions/1/diagram")
    assert mermaid.status_code == 200
    assert mermaid.headers["content-type"].startswith("text/vnd.mermaid")
    assert mermaid.text.startswith("stateDiagram-v2\n")
    assert mermaid.text.count(" --> ") == 1 + 4  # the initial arrow and 4 edges
    dot = api.get("/v1/machines/order/versions/1/diagram", params={"format": "dot"})
    assert dot.headers["content-type"].startswith("text/vnd.graphviz")
    assert 'label="PAY [ctx.amount > 0]"' in dot.text
    bad = api.get("/v1/machines/order/versions/1/diagram", params={"format": "png"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "BAD_REQUEST"


def test_instance_lifecycle(api: httpx.Client) -> None:
    created = create(api, "o-1")
    assert created.status_code == 201
    assert created.json()["instance_id"] == "o-1" and created.json()["state"] == "created"
    got = api.get("/v1/instances/o-1")
    assert got.status_code == 200
    assert got.json()["ctx"] == {"amount": 10}
    assert got.headers["etag"] == f'"{got.json()["last_wal_offset"]}"'
    applied = api.post("/v1/instances/o-1/events", json={"event": "PAY", "payload": {"by": "x"}})
    assert applied.status_code == 200, applied.text
    assert applied.json()["to_state"] == "paid"
    assert applied.headers["etag"] == f'"{applied.json()["wal_offset"]}"'
    listing = api.get("/v1/instances", params={"machine": "order", "state": "paid"}).json()
    assert [item["id"] for item in listing["instances"]] == ["o-1"] and listing["total"] == 1
    snapshot = api.post("/v1/instances/o-1/snapshot")
    assert snapshot.status_code == 200 and snapshot.json()["instance_id"] == "o-1"
    deleted = api.delete("/v1/instances/o-1")
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert api.get("/v1/instances/o-1").status_code == 404
    history = api.get("/v1/instances/o-1/history").json()
    assert [e["kind"] for e in history["entries"]] == ["created", "event", "deleted"]
    assert history["entries"][1]["payload"] == {"by": "x"}
    assert history["truncated"] is False


def test_semantic_errors_map_to_statuses(api: httpx.Client) -> None:
    create(api, "o-2", amount=0)
    guard = api.post("/v1/instances/o-2/events", json={"event": "PAY"})
    assert guard.status_code == 422 and guard.json()["error"]["code"] == "GUARD_FAILED"
    invalid = api.post("/v1/instances/o-2/events", json={"event": "SHIP"})
    assert invalid.status_code == 422
    assert invalid.json()["error"]["code"] == "INVALID_TRANSITION"
    exists = create(api, "o-2")
    assert exists.status_code == 409 and exists.json()["error"]["code"] == "INSTANCE_EXISTS"
    missing = api.post("/v1/instances/none/events", json={"event": "PAY"})
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "code": "INSTANCE_NOT_FOUND",
        "message": missing.json()["error"]["message"],
        "retryable": False,
        "details": {"instance_id": "none"},
    }
    conflict = api.post(
        "/v1/instances/o-2/events", json={"event": "CANCEL", "expected_state": "paid"}
    )
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "CONFLICT"
    unknown_machine = api.post("/v1/instances", json={"machine": "nope", "version": 1})
    assert unknown_machine.status_code == 404
    assert unknown_machine.json()["error"]["code"] == "MACHINE_NOT_FOUND"


def test_if_match_is_expected_wal_offset(api: httpx.Client) -> None:
    create(api, "o-3")
    etag = api.get("/v1/instances/o-3").headers["etag"]
    stale = api.post("/v1/instances/o-3/events", json={"event": "PAY"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "CONFLICT"
    fresh = api.post("/v1/instances/o-3/events", json={"event": "PAY"}, headers={"If-Match": etag})
    assert fresh.status_code == 200, fresh.text
    again = api.post("/v1/instances/o-3/events", json={"event": "SHIP"}, headers={"If-Match": etag})
    assert again.status_code == 409
    garbage = api.post(
        "/v1/instances/o-3/events", json={"event": "SHIP"}, headers={"If-Match": "soon"}
    )
    assert garbage.status_code == 400 and garbage.json()["error"]["code"] == "BAD_REQUEST"


def test_idempotency_key_header(api: httpx.Client) -> None:
    key = {"Idempotency-Key": "create-o-4"}
    body = {"machine": "order", "version": 1, "initial_ctx": {"amount": 5}}
    first = api.post("/v1/instances", json=body, headers=key)
    second = api.post("/v1/instances", json=body, headers=key)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()  # the same auto-generated id, logged once
    instance_id = first.json()["instance_id"]
    pay = {"Idempotency-Key": "pay-once"}
    one = api.post(f"/v1/instances/{instance_id}/events", json={"event": "PAY"}, headers=pay)
    two = api.post(f"/v1/instances/{instance_id}/events", json={"event": "PAY"}, headers=pay)
    assert one.json()["to_state"] == two.json()["to_state"] == "paid"
    assert one.json()["wal_offset"] == two.json()["wal_offset"]
    assert one.json()["applied"] is True and two.json()["applied"] is False
    history = api.get(f"/v1/instances/{instance_id}/history").json()
    assert [e["kind"] for e in history["entries"]] == ["created", "event"]


def test_batch_wal_stats_and_compact(api: httpx.Client) -> None:
    ops = [
        {
            "op": "CREATE_INSTANCE",
            "params": {"machine": "order", "version": 1, "instance_id": "b1"},
        },
        {"op": "APPLY_EVENT", "params": {"instance_id": "b1", "event": "CANCEL"}},
    ]
    batch = api.post("/v1/batch", json={"mode": "atomic", "ops": ops})
    assert batch.status_code == 200, batch.text
    assert [item["status"] for item in batch.json()["results"]] == ["ok", "ok"]
    b2 = {
        "op": "CREATE_INSTANCE",
        "params": {"machine": "order", "version": 1, "instance_id": "b2"},
    }
    failing = api.post("/v1/batch", json={"mode": "atomic", "ops": [b2, ops[1]]})
    assert failing.status_code == 400
    assert failing.json()["error"]["details"]["index"] == 1
    assert api.get("/v1/instances/b2").status_code == 404  # nothing of the batch was applied
    wal = api.get("/v1/wal", params={"from_offset": 0, "limit": 2}).json()
    assert [r["entry"]["type"] for r in wal["records"]] == ["put_machine", "create_instance"]
    stats = api.get("/v1/wal/stats").json()
    assert stats["entry_count"] >= 3 and stats["io_stats"]["fsyncs"] >= 1
    compacted = api.post("/v1/admin/compact", json={"force_snapshot": True})
    assert compacted.status_code == 200 and compacted.json()["snapshots_created"] == 1
    assert api.post("/v1/admin/compact").status_code == 200  # the body is optional
    history = api.get("/v1/instances/b1/history").json()
    assert [e["kind"] for e in history["entries"]] == ["created", "event"]


def test_history_paging(api: httpx.Client) -> None:
    create(api, "h1", amount=0)
    for _ in range(3):  # refused events leave no history
        assert api.post("/v1/instances/h1/events", json={"event": "PAY"}).status_code == 422
    assert api.post("/v1/instances/h1/events", json={"event": "CANCEL"}).status_code == 200
    full = api.get("/v1/instances/h1/history").json()["entries"]
    assert [e["kind"] for e in full] == ["created", "event"]
    page = api.get("/v1/instances/h1/history", params={"limit": 1}).json()
    assert page["entries"] == full[-1:] and page["truncated"] is True
    older = api.get(
        "/v1/instances/h1/history", params={"before_offset": full[-1]["wal_offset"]}
    ).json()
    assert older["entries"] == full[:1] and older["truncated"] is False
    too_many = api.get("/v1/instances/h1/history", params={"limit": 1001})
    assert too_many.status_code == 400
    assert api.get("/v1/instances/never/history").status_code == 404


def test_docs_and_console_are_served(api: httpx.Client) -> None:
    docs = api.get("/docs")
    assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower() and "https://" not in docs.text.split("<body>")[0]
    bundle = api.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
    assert api.get("/openapi.json").json()["openapi"].startswith("3.1")
