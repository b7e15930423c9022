"""A child process that runs ``fdatasync`` for its parent, outside the parent's GIL.

Run as a script (``python -I -S fsync_helper.py FD``) it serves one Unix socket: each
request is one byte carrying a file descriptor (``SCM_RIGHTS``); it syncs that file,
closes its copy and answers with the outcome, a 4-byte errno (0: durable). Answers come
in request order. It exits when the parent closes the socket, which the kernel also does
when the parent dies, so a killed server leaves no helper behind.

:class:`FsyncHelper` is the parent's handle. Descriptors are passed, not paths, so the
helper syncs exactly the file the parent wrote, even if it was renamed or deleted since;
``fdatasync`` on the passed descriptor flushes the same file as on the parent's.

The parent's event loop watches :meth:`FsyncHelper.fileno` and reads answers with
:meth:`FsyncHelper.answers`; neither side ever blocks the other's interpreter.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Sequence

_ANSWER = struct.Struct("<i")
_FD = struct.Struct("i")
#: How long closing waits for the helper to exit before killing it.
EXIT_TIMEOUT = 2.0


class HelperGone(OSError):
    """The helper process exited or its socket broke; outstanding syncs have no outcome."""


class FsyncHelper:
    """A running helper process and the parent's end of its socket (non-blocking)."""

    def __init__(self, command: Sequence[str] | None = None) -> None:
        """Start the helper; ``command`` replaces the interpreter and script (tests).

        Raises ``OSError`` when the process cannot be started.
        """
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            argv = list(command) if command else [sys.executable, "-I", "-S", __file__]
            self._process = subprocess.Popen(
                [*argv, str(child.fileno())],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a terminal's Ctrl-C is for the server, not for us
            )
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        parent.setblocking(False)
        self._sock = parent
        self._buffer = b""

    @property
    def pid(self) -> int:
        return self._process.pid

    def fileno(self) -> int:
        """The descriptor that becomes readable when answers arrive (or the helper exits)."""
        return self._sock.fileno()

    def submit(self, fd: int) -> None:
        """Ask for ``fdatasync(fd)``; the helper keeps its own copy of the descriptor."""
        try:
            self._sock.sendmsg([b"s"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, _FD.pack(fd))])
        except OSError as exc:
            raise HelperGone(exc.errno or errno.EPIPE, f"the fsync helper is gone: {exc}") from exc

    def answers(self) -> list[int]:
        """Every answer that arrived (errno values, 0 = durable), oldest first.

        Raises ``HelperGone`` once the helper has exited.
        """
        chunks = [self._buffer]
        while True:
            try:
                data = self._sock.recv(4096)
            except BlockingIOError:
                break
            except OSError as exc:
                raise HelperGone(exc.errno or errno.EPIPE, f"fsync helper: {exc}") from exc
            if not data:
                raise HelperGone(errno.EPIPE, "the fsync helper exited")
            chunks.append(data)
        data = b"".join(chunks)
        whole = len(data) - len(data) % _ANSWER.size
        self._buffer = data[whole:]
        return [value for (value,) in _ANSWER.iter_unpack(data[:whole])]

    def close(self) -> None:
        """Close the socket (the helper then exits) and reap the process. Idempotent."""
        self._sock.close()
        try:
            self._process.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


# -- the child side ------------------------------------------------------------------------


def _received_fds(ancillary: list[tuple[int, int, bytes]]) -> list[int]:
    fds: list[int] = []
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(data) - len(data) % _FD.size
            fds.extend(value for (value,) in _FD.iter_unpack(data[:usable]))
    return fds


def _sync(fds: list[int]) -> int:
    outcome = 0 if fds else errno.EBADF
    for fd in fds:
        try:
            os.fdatasync(fd)
        except OSError as exc:
            outcome = exc.errno or errno.EIO
        finally:
            os.close(fd)
    return outcome


def serve(sock: socket.socket) -> int:
    """Answer sync requests until the parent closes the socket; returns the exit status."""
    space = socket.CMSG_SPACE(_FD.size * 4)
    while True:
        try:
            message, ancillary, _flags, _address = sock.recvmsg(1, space)
        except InterruptedError:
            continue
        except OSError:
            return 1
        if not message:
            return 0
        outcome = _sync(_received_fds(ancillary))
        try:
            sock.sendall(_ANSWER.pack(outcome))
        except OSError:
            return 0  # the parent stopped listening: nobody waits for this answer


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with socket.socket(fileno=int(argv[1])) as sock:
        return serve(sock)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
