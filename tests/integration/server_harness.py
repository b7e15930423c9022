"""Start the real ``rstmdb`` server process for tests, and talk to it over raw sockets.

:class:`ServerProcess` runs the installed ``rstmdb`` console script on a free
loopback port (``--bind 127.0.0.1:0``; the port is read from the server's
``listening on HOST:PORT`` line on stdout), waits until it answers PING, and
keeps its log (stderr) in a file. :class:`RawClient` is a small blocking
client built on the project's own codec, for tests that need exact bytes.

The ``rstmdb_server`` fixture in ``conftest.py`` is the usual entry point.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pyrstmdb.protocol import ClientCodec, Event, Response, request_message

START_TIMEOUT = 20.0
_LISTENING = re.compile(r"^listening on (\S+):(\d+)$")
_METRICS = re.compile(r"^metrics on (\S+):(\d+)$")
_HTTP = re.compile(r"^http on (\S+)$")
_CLEARED_ENV = ("RUST_LOG",)


def rstmdb_command() -> list[str]:
    """The ``rstmdb`` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "rstmdb"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "pyrstmdb.server.main"]


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any ``RSTMDB_*`` setting, plus ``extra``.

    The HTTP API listens on a free port (``RSTMDB_HTTP_BIND=127.0.0.1:0``) unless
    ``extra`` says otherwise, so servers started at once never share a fixed port.
    """
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("RSTMDB_") and k not in _CLEARED_ENV
    }
    env["RSTMDB_HTTP_BIND"] = "127.0.0.1:0"
    env.update(extra or {})
    return env


def run_rstmdb(
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    cwd: Any = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``rstmdb ARGS`` to completion (for startup failures and ``check``)."""
    return subprocess.run(
        [*rstmdb_command(), *args],
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


class ServerProcess:
    """One ``rstmdb`` process; ``start()`` returns once it answers PING."""

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        bind: str | None = "127.0.0.1:0",
    ) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.env = dict(env or {})
        self.args = list(args)
        self.bind = bind
        self.host = ""
        self.port = 0
        self.metrics_port: int | None = None
        self.http_url: str | None = None  # "http://HOST:PORT/" when the HTTP API is on
        self.proc: subprocess.Popen[str] | None = None
        self.stdout_lines: list[str] = []
        self._tls: dict[str, Any] | None = None

    # -- lifecycle -------------------------------------------------------------------
    def command(self) -> list[str]:
        cmd = [*rstmdb_command(), "--data-dir", str(self.data_dir)]
        if self.bind is not None:
            cmd += ["--bind", self.bind]
        return cmd + self.args

    def start(self, wait_ping: bool = True) -> ServerProcess:
        self.stdout_lines = []
        self.port = 0
        self.metrics_port = None
        self.http_url = None
        log = open(self.log_path, "a")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            self.command(),
            env=clean_env(self.env),
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        log.close()
        threading.Thread(target=self._read_stdout, args=(self.proc,), daemon=True).start()
        self._wait_listening()
        if wait_ping and not self.env.get("RSTMDB_TLS_ENABLED"):
            self.wait_ping()
        return self

    def _read_stdout(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.stdout_lines.append(line.rstrip("\n"))

    def _wait_listening(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            for line in list(self.stdout_lines):
                metrics = _METRICS.match(line)
                if metrics:
                    self.metrics_port = int(metrics.group(2))
                found = _LISTENING.match(line)
                if found:
                    self.host, self.port = found.group(1), int(found.group(2))
                http = _HTTP.match(line)
                if http:
                    self.http_url = http.group(1)
            metrics_known = self.metrics_port or "RSTMDB_METRICS_ENABLED" not in self.env
            http_known = self.http_url or self.env.get("RSTMDB_HTTP_ENABLED") == "false"
            if self.port and metrics_known and http_known:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"rstmdb exited with {self.proc.returncode}: {self.log()}")
            time.sleep(0.01)
        raise RuntimeError(f"rstmdb did not start listening: {self.log()}")

    def wait_ping(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with RawClient(self.host, self.port) as client:
                    if client.call("PING").result == {"pong": True}:
                        return
            except OSError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.02)

    def send_signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send ``signum`` and wait for the exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash would; safe to call on a stopped server."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=15)

    def restart(self) -> ServerProcess:
        """A fresh process on the same data directory (a new port unless ``bind`` fixes it)."""
        self.kill()
        return self.start()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- access ------------------------------------------------------------------------
    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def log(self) -> str:
        try:
            return self.log_path.read_text()
        except OSError:
            return ""

    def raw(self, timeout: float = 10.0) -> RawClient:
        return RawClient(self.host, self.port, timeout=timeout)

    def client_kwargs(self) -> dict[str, Any]:
        """``host`` and ``port`` for ``rstmdb.Client(**kwargs)``."""
        return {"host": self.host, "port": self.port}


def closed_by_server(sock: socket.socket, timeout: float = 5.0) -> bool:
    """True if the server closes ``sock`` within ``timeout`` (data is discarded)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except OSError:
        return True
    return True


class RawClient:
    """A blocking socket client speaking RCP through the project's ``ClientCodec``."""

    def __init__(
        self,
        host: str,
        port: int,
        timeout: float = 10.0,
        sock: socket.socket | None = None,
    ) -> None:
        self.sock = sock or socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.codec = ClientCodec()
        self._next_id = 0
        self._inbox: list[Response | Event] = []

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def next_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, op: str, params: dict[str, Any] | None = None, id: str | None = None) -> str:
        request_id = id if id is not None else self.next_id()
        self.sock.sendall(self.codec.encode(request_message(request_id, op, params or {})))
        return request_id

    def receive(self) -> Response | Event:
        """The next message; raises ``ConnectionError`` when the server closed."""
        while not self._inbox:
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("server closed the connection")
            self._inbox.extend(self.codec.feed(data))
        return self._inbox.pop(0)

    def response(self) -> Response:
        """The next response, skipping events."""
        while True:
            message = self.receive()
            if isinstance(message, Response):
                return message

    def call(self, op: str, params: dict[str, Any] | None = None) -> Response:
        request_id = self.send(op, params)
        response = self.response()
        assert response.id == request_id, (response, request_id)
        return response

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True if the server closes the connection within ``timeout`` (data is discarded)."""
        return closed_by_server(self.sock, timeout)
