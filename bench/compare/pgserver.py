"""A throw-away PostgreSQL server in a directory: initdb, start, stop by PID.

Durable settings (``fsync=on``, ``synchronous_commit=on``, ``full_page_writes=on``),
TCP on a free loopback port only, trust authentication for the ``postgres`` role.
PostgreSQL refuses to run as root, so as root the cluster belongs to an
unprivileged user (``nobody`` unless told otherwise) and the server runs as that
user (``root`` and its ancestors must let that user pass); otherwise it runs as the
current user. Debian's binaries live in
``/usr/lib/postgresql/<version>/bin``; ``PATH`` is searched too.

    with running(tmpdir) as pg:
        dsn = pg.dsn()
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.compare.processes import free_port, spawn, stop, tail, wait_for

DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
_DEBIAN = Path("/usr/lib/postgresql")


def find_bin_dir() -> Path | None:
    """The directory holding ``initdb`` and ``postgres`` (newest Debian version first)."""
    versions = sorted(
        (p for p in _DEBIAN.glob("*/bin") if (p / "postgres").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    if versions:
        return versions[0]
    found = shutil.which("postgres")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    return None


@dataclass
class PostgresServer:
    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        """The postmaster's PID (backends are its children)."""
        return self.proc.pid

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster), killed after 30 s."""
        stop(self.proc, signal.SIGINT)


def _owner(user: str | None) -> tuple[int | None, int | None]:
    """uid and gid to run as: ``user``, else ``nobody`` when root, else ourselves."""
    if user is None:
        if os.geteuid() != 0:
            return None, None
        user = "nobody"
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def _initdb(bin_dir: Path, data: Path, log: Path, uid: int | None, gid: int | None) -> None:
    command = [
        str(bin_dir / "initdb"),
        "-D",
        str(data),
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--no-locale",
    ]
    proc = spawn(command, log, user=uid, group=gid)
    if proc.wait() != 0:
        raise RuntimeError(f"initdb failed; {log} ends with:\n{tail(log)}")


def _ready(data: Path) -> bool:
    try:
        lines = (data / "postmaster.pid").read_text().splitlines()
    except OSError:
        return False
    return len(lines) >= 8 and lines[7].strip() == "ready"


def start(
    root: Path | str,
    *,
    settings: Mapping[str, str] | None = None,
    user: str | None = None,
    bin_dir: Path | None = None,
) -> PostgresServer:
    """initdb a new cluster in ``root/postgres`` and start it; the caller stops it."""
    found = bin_dir or find_bin_dir()
    if found is None:
        raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    base = Path(root) / "postgres"
    base.mkdir(parents=True)
    uid, gid = _owner(user)
    if uid is not None:
        os.chmod(root, 0o711)  # the owner must reach its directory
        os.chown(base, uid, -1 if gid is None else gid)
    data, log = base / "data", base / "server.log"
    _initdb(found, data, base / "initdb.log", uid, gid)
    port = free_port()
    options = {**DURABLE, **(settings or {})}
    options.update(listen_addresses="127.0.0.1", unix_socket_directories="", port=str(port))
    command = [str(found / "postgres"), "-D", str(data)]
    for key, value in options.items():
        command += ["-c", f"{key}={value}"]
    proc = spawn(command, log, user=uid, group=gid)
    server = PostgresServer(data, port, proc, log)
    try:
        wait_for(lambda: _ready(data), proc, "postgres", log)
    except BaseException:
        server.stop()
        raise
    return server


@contextlib.contextmanager
def running(
    root: Path | str,
    *,
    settings: Mapping[str, str] | None = None,
    user: str | None = None,
    bin_dir: Path | None = None,
) -> Iterator[PostgresServer]:
    """:func:`start`, and stop it on the way out (errors and Ctrl+C included)."""
    server = start(root, settings=settings, user=user, bin_dir=bin_dir)
    try:
        yield server
    finally:
        server.stop()
