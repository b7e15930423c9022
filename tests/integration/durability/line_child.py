"""A child Python process that reports on stdout, one line at a time, until SIGKILLed."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


class LineChild:
    """Runs ``script`` with ``args``; collects its stdout lines; waits for ``ready``."""

    def __init__(self, script: Path, args: list[str], role: str) -> None:
        self.role = role
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, str(script), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while "ready" not in self.lines:
            assert self.proc.poll() is None, f"{self.role} process died"
            assert time.monotonic() < deadline, f"{self.role} process did not start"
            time.sleep(0.01)

    def kill(self) -> list[str]:
        """SIGKILL the child, wait for it, and return every line it wrote."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._reader.join(5)
        return list(self.lines)
