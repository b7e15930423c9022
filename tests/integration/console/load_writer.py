"""Write TICK events at a target rate over RCP, then print what was achieved as JSON.

    python load_writer.py HOST:PORT RATE SECONDS

Each request is a BATCH of 100 APPLY_EVENTs on 100 instances of the ``ticker``
machine (a self-transition), paced to RATE events per second. Prints
``{"events": N, "seconds": S, "rate": N/S}``.
"""

from __future__ import annotations

import json
import sys
import time

from pyrstmdb.client.sync import Client

MACHINE = {
    "states": ["running"],
    "initial": "running",
    "transitions": [{"from": "running", "event": "TICK", "to": "running"}],
}
INSTANCES = 100


def prepare(client: Client) -> None:
    client.put_machine("ticker", 1, MACHINE)
    existing = {i.id for i in client.list_instances(machine="ticker", limit=1000).instances}
    for n in range(INSTANCES):
        if f"tick-{n}" not in existing:
            client.create_instance("ticker", 1, instance_id=f"tick-{n}")


def run(address: str, rate: float, seconds: float) -> dict[str, float]:
    ops = [
        {"op": "APPLY_EVENT", "params": {"instance_id": f"tick-{n}", "event": "TICK"}}
        for n in range(INSTANCES)
    ]
    with Client(address) as client:
        prepare(client)
        start = time.monotonic()
        sent = 0
        while (now := time.monotonic()) - start < seconds:
            due = (now - start) * rate
            if sent + INSTANCES > due:
                time.sleep(min(0.005, (sent + INSTANCES - due) / rate))
                continue
            client.batch(ops, mode="best_effort")
            sent += INSTANCES
        elapsed = time.monotonic() - start
    return {"events": sent, "seconds": elapsed, "rate": sent / elapsed}


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]))), flush=True)
