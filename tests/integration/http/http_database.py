"""The embedded ``Database`` API spoken over the HTTP API: a front end for the
operation-semantics tests. Each method makes its HTTP request and returns the typed
result (from the JSON body) or raises the ``RstmdbError`` of the JSON error's code."""

from __future__ import annotations

from typing import Any

import httpx

from pyrstmdb.client.api import latest_version, parse_batch
from pyrstmdb.errors import error_from_dict
from pyrstmdb.results import (
    ApplyEventResult,
    BatchResult,
    CreateInstanceResult,
    DeleteInstanceResult,
    GetInstanceResult,
    GetMachineResult,
    HistoryResult,
    ListInstancesResult,
    ListMachinesResult,
    PutMachineResult,
    SnapshotResult,
    WalStatsResult,
)


def _body(response: httpx.Response) -> dict[str, Any]:
    payload: dict[str, Any] = response.json()
    if response.status_code >= 400:
        raise error_from_dict(payload["error"])
    return payload


def _given(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _key(idempotency_key: str | None) -> dict[str, str]:
    return {} if idempotency_key is None else {"Idempotency-Key": idempotency_key}


class HttpDatabase:
    def __init__(self, client: httpx.Client) -> None:
        self.http = client

    def put_machine(
        self, machine: str, version: int, definition: dict[str, Any], checksum: str | None = None
    ) -> PutMachineResult:
        response = self.http.put(f"/v1/machines/{machine}/versions/{version}", json=definition)
        return PutMachineResult.from_dict(_body(response))

    def get_machine(self, machine: str, version: int | None = None) -> GetMachineResult:
        if version is None:
            version = latest_version(self.list_machines(), machine) or 0
        response = self.http.get(f"/v1/machines/{machine}/versions/{version}")
        return GetMachineResult.from_dict(_body(response))

    def list_machines(self) -> ListMachinesResult:
        return ListMachinesResult.from_dict(_body(self.http.get("/v1/machines")))

    def create_instance(
        self,
        machine: str,
        version: int,
        instance_id: str | None = None,
        initial_ctx: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> CreateInstanceResult:
        body = _given(
            machine=machine, version=version, instance_id=instance_id, initial_ctx=initial_ctx
        )
        response = self.http.post("/v1/instances", json=body, headers=_key(idempotency_key))
        return CreateInstanceResult.from_dict(_body(response))

    def get_instance(self, instance_id: str) -> GetInstanceResult:
        return GetInstanceResult.from_dict(_body(self.http.get(f"/v1/instances/{instance_id}")))

    def list_instances(
        self,
        machine: str | None = None,
        state: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> ListInstancesResult:
        params = _given(machine=machine, state=state, limit=limit, offset=offset)
        return ListInstancesResult.from_dict(_body(self.http.get("/v1/instances", params=params)))

    def delete_instance(
        self, instance_id: str, idempotency_key: str | None = None
    ) -> DeleteInstanceResult:
        response = self.http.delete(f"/v1/instances/{instance_id}", headers=_key(idempotency_key))
        return DeleteInstanceResult.from_dict(_body(response))

    def apply_event(
        self,
        instance_id: str,
        event: str,
        payload: dict[str, Any] | None = None,
        expected_state: str | None = None,
        expected_wal_offset: int | None = None,
        event_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> ApplyEventResult:
        body = _given(
            event=event,
            payload=payload,
            expected_state=expected_state,
            expected_wal_offset=expected_wal_offset,
            event_id=event_id,
        )
        response = self.http.post(
            f"/v1/instances/{instance_id}/events", json=body, headers=_key(idempotency_key)
        )
        return ApplyEventResult.from_dict(_body(response))

    def batch(self, ops: list[dict[str, Any]], mode: str = "atomic") -> BatchResult:
        response = self.http.post("/v1/batch", json={"mode": mode, "ops": ops})
        return parse_batch(ops, _body(response))

    def get_history(
        self, instance_id: str, limit: int = 100, before_offset: int | None = None
    ) -> HistoryResult:
        params = _given(limit=limit, before_offset=before_offset)
        response = self.http.get(f"/v1/instances/{instance_id}/history", params=params)
        return HistoryResult.from_dict(_body(response))

    def snapshot_instance(self, instance_id: str) -> SnapshotResult:
        response = self.http.post(f"/v1/instances/{instance_id}/snapshot")
        return SnapshotResult.from_dict(_body(response))

    def wal_stats(self) -> WalStatsResult:
        return WalStatsResult.from_dict(_body(self.http.get("/v1/wal/stats")))
