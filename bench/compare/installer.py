"""Install what the comparison needs and is missing: the ``bench`` extra, Redis, PostgreSQL.

Python packages come from the ``bench`` extra in ``pyproject.toml`` (pip, into
this interpreter). Redis and PostgreSQL come from Debian packages
(``apt-get``, as root); anywhere else a missing one is an error naming what to
install. SQLite is Python's own ``sqlite3``.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from bench.compare import pgserver, peer_redis

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
DEBIAN = {"redis": "redis-server", "postgres": "postgresql"}


class MissingPeer(SystemExit):
    """A peer that is not installed and cannot be installed here (exit status 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def bench_requirements() -> list[str]:
    """The ``bench`` extra of pyproject.toml (empty when the file is not there)."""
    if not PYPROJECT.exists():
        return []
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    return list(project.get("optional-dependencies", {}).get("bench", []))


def _installed(requirement: str) -> bool:
    name = re.match(r"[A-Za-z0-9_.\-]+", requirement)
    try:
        importlib.metadata.version(name.group(0) if name else requirement)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def ensure_python_packages() -> None:
    missing = [r for r in bench_requirements() if not _installed(r)]
    if missing:
        _say(f"installing {', '.join(missing)} (the bench extra) ...")
        command = [sys.executable, "-m", "pip", "install", "--quiet", *missing]
        if subprocess.run(command, check=False).returncode != 0:
            raise MissingPeer(f"could not pip install {' '.join(missing)}")


def _missing_debian(systems: set[str]) -> list[str]:
    missing = []
    if "redis" in systems and peer_redis.find_binary() is None:
        missing.append(DEBIAN["redis"])
    if "postgres" in systems and pgserver.find_bin_dir() is None:
        missing.append(DEBIAN["postgres"])
    return missing


def _apt(*args: str) -> int:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", *args]
    return subprocess.run(command, env=env, check=False, stdout=subprocess.DEVNULL).returncode


def ensure_servers(systems: set[str]) -> None:
    """Install Redis and PostgreSQL when they are wanted and missing (apt-get, as root)."""
    missing = _missing_debian(systems)
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise MissingPeer(
            f"not installed: {', '.join(missing)}. Install them (Debian/Ubuntu: "
            f"sudo apt-get install {' '.join(missing)}; elsewhere Redis 7 and PostgreSQL 14+) "
            "or leave them out with --only."
        )
    _say(f"installing {', '.join(missing)} with apt-get ...")
    _apt("update", "-qq")
    if _apt("install", "-y", "-qq", "--no-install-recommends", *missing) != 0:
        raise MissingPeer(f"apt-get install {' '.join(missing)} failed")
    still = _missing_debian(systems)
    if still:
        raise MissingPeer(f"still not installed after apt-get: {', '.join(still)}")
