"""``python -m bench.compare [--quick] [--only rstmdb,redis,...]``: run the comparison.

Installs what is missing (the ``bench`` extra; Redis and PostgreSQL with apt-get
as root), runs the "order lifecycle" workload against every system with 1 and 32
clients, and prints one table to standard output; progress goes to standard error.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from bench.compare import installer, report
from bench.compare.runner import Plan
from bench.compare.systems import SYSTEMS

FULL_SECONDS = 3.5  # phase 1 of each run; phase 2 takes about three times as long
QUICK_SECONDS = 0.4


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (~30 s)")
    parser.add_argument(
        "--only", default=",".join(SYSTEMS), help=f"systems to run, of: {', '.join(SYSTEMS)}"
    )
    parser.add_argument("--clients", default="1,32", help="client counts (default: 1,32)")
    parser.add_argument("--seconds", type=float, help="phase 1 time budget per run")
    parser.add_argument("--limit", type=int, help="at most this many instances per client")
    return parser


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


async def _run_all(root: Path, names: list[str], plans: list[Plan]) -> list[report.Row]:
    rows: list[report.Row] = []
    for number, name in enumerate(names, 1):
        print(f"[{number}/{len(names)}] {name}", file=sys.stderr, flush=True)
        system_root = root / name
        system_root.mkdir()
        rows += await SYSTEMS[name](system_root, plans)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in SYSTEMS]
    if unknown:
        print(f"unknown system(s): {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
        return 2
    seconds = args.seconds or (QUICK_SECONDS if args.quick else FULL_SECONDS)
    plans = [Plan(int(c), seconds, args.limit) for c in args.clients.split(",")]
    try:
        installer.ensure_python_packages()
        installer.ensure_servers(set(names))
    except installer.MissingPeer as missing:
        print(f"bench-compare: {missing}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupted)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pyrstmdb-compare-") as tmp:
        os.chmod(tmp, 0o711)  # PostgreSQL's unprivileged owner passes through it
        rows = asyncio.run(_run_all(Path(tmp), names, plans))
    print(f"done in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    print(report.table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
