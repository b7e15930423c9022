"""``rstmdb check --salvage`` on a log two writers damaged, then a server on the result.

Two ``Database`` objects write one directory at once (its ``LOCK`` file was removed by
hand between the two opens, which is how two writers can still meet): both continue from
sequence 2, so the log holds ``sequence 3 after 3``. ``check`` reports it damaged and
offers a salvage; ``--salvage`` keeps the longest consistent prefix, keeps the rest in a
``.salvaged`` file and reports exactly what it dropped; a server then starts on it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from server_harness import ServerProcess, run_rstmdb

from pyrstmdb import Database

COUNTER = {
    "states": ["s"],
    "initial": "s",
    "transitions": [{"from": "s", "event": "INC", "to": "s"}],
}


def _damage_with_two_writers(data_dir: Path) -> tuple[int, int]:
    """Returns (bytes of the consistent prefix, size of the segment)."""
    first = Database(data_dir)
    first.put_machine("counter", 1, COUNTER)
    first.create_instance("counter", 1, instance_id="a1")
    (data_dir / "LOCK").unlink(missing_ok=True)
    second = Database(data_dir)
    segment = data_dir / "wal" / "0000000000000001.wal"
    first.create_instance("counter", 1, instance_id="a2")
    prefix = segment.stat().st_size
    for n in (2, 3, 4):
        second.create_instance("counter", 1, instance_id=f"b{n}")
        if n < 4:
            first.create_instance("counter", 1, instance_id=f"a{n + 1}")
    first.close()
    second.close()
    return prefix, segment.stat().st_size


@pytest.mark.slow
def test_salvage_keeps_the_consistent_prefix_and_a_server_starts_on_it(
    tmp_path: Path, rstmdb_server: Callable[..., ServerProcess]
) -> None:
    data_dir = tmp_path / "data"
    prefix, size = _damage_with_two_writers(data_dir)
    segment = data_dir / "wal" / "0000000000000001.wal"
    original = segment.read_bytes()
    dropped = size - prefix

    refused = run_rstmdb(["--bind", "127.0.0.1:0", "--data-dir", str(data_dir)])
    assert refused.returncode != 0 and "sequence 3 after 3" in refused.stderr

    check = run_rstmdb(["check", "--data-dir", str(data_dir)])
    assert check.returncode == 1
    assert "sequence 3 after 3" in check.stdout and "result: DAMAGED" in check.stdout
    offer = (
        f"salvage: --salvage would keep the first 3 records ({prefix} bytes) and move "
        f"5 records ({dropped} bytes, 1 file) aside"
    )
    assert offer in check.stdout.splitlines()
    assert segment.read_bytes() == original  # a check changes nothing

    repair = run_rstmdb(["check", "--repair", "--data-dir", str(data_dir)])
    assert repair.returncode == 1 and offer in repair.stdout.splitlines()
    assert segment.read_bytes() == original  # nor does --repair: it only cuts torn tails

    salvaged = run_rstmdb(["check", "--salvage", "--data-dir", str(data_dir)])
    assert salvaged.returncode == 0, salvaged.stdout + salvaged.stderr
    lines = salvaged.stdout.splitlines()
    saved = Path(f"{segment}.salvaged")
    assert f"salvage: moved {segment.name} bytes {prefix}..{size} to {saved}" in lines
    assert (
        f"salvage: kept 3 records ({prefix} bytes); dropped 5 records ({dropped} bytes, 1 file)"
        in lines
    )
    assert "result: OK" in lines
    assert "state: 1 machines (1 versions), 2 instances (0 deleted)" in lines
    assert segment.read_bytes() == original[:prefix]
    assert saved.read_bytes() == original[prefix:]  # nothing lost: kept aside

    server = rstmdb_server(data_dir=data_dir)
    with server.raw() as client:
        listed = client.call("LIST_INSTANCES", {}).result
        assert listed is not None
        assert sorted(i["id"] for i in listed["instances"]) == ["a1", "a2"]
        created = client.call(
            "CREATE_INSTANCE", {"machine": "counter", "version": 1, "instance_id": "after"}
        )
        assert created.ok, created.error
    server.restart()
    with server.raw() as client:
        got = client.call("GET_INSTANCE", {"instance_id": "after"})
        assert got.ok, got.error
    server.kill()
    assert run_rstmdb(["check", "--data-dir", str(data_dir)]).returncode == 0
    assert sorted(os.listdir(data_dir / "wal")) == [segment.name, saved.name]
