"""The one error tree of pyrstmdb and its code table.

Every failure a caller can see is an :class:`RstmdbError` carrying one of the
16 protocol error codes (PROTOCOL §8), a human message, the ``retryable`` flag
(a function of the code alone) and an optional ``details`` mapping. The server
turns these into error responses; the client turns error responses back into
the same classes, so embedded and remote callers catch the same exceptions.

Local transport failures of the client (cannot connect, connection lost) are
:class:`ClientConnectionError`, which is not a protocol error and has no code.

This module imports nothing from the package.
"""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """The complete set of protocol error codes."""

    UNSUPPORTED_PROTOCOL = "UNSUPPORTED_PROTOCOL"
    BAD_REQUEST = "BAD_REQUEST"
    UNAUTHORIZED = "UNAUTHORIZED"
    AUTH_FAILED = "AUTH_FAILED"
    NOT_FOUND = "NOT_FOUND"
    MACHINE_NOT_FOUND = "MACHINE_NOT_FOUND"
    MACHINE_VERSION_EXISTS = "MACHINE_VERSION_EXISTS"
    MACHINE_VERSION_LIMIT_EXCEEDED = "MACHINE_VERSION_LIMIT_EXCEEDED"
    INSTANCE_NOT_FOUND = "INSTANCE_NOT_FOUND"
    INSTANCE_EXISTS = "INSTANCE_EXISTS"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    GUARD_FAILED = "GUARD_FAILED"
    CONFLICT = "CONFLICT"
    WAL_IO_ERROR = "WAL_IO_ERROR"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    RATE_LIMITED = "RATE_LIMITED"


RETRYABLE_CODES = frozenset(
    {ErrorCode.WAL_IO_ERROR, ErrorCode.INTERNAL_ERROR, ErrorCode.RATE_LIMITED}
)


class RstmdbError(Exception):
    """Base of every error that carries a protocol error code."""

    code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_CODES

    def to_dict(self) -> dict[str, Any]:
        """The protocol error object: code, message, retryable, details if any."""
        out: dict[str, Any] = {
            "code": self.code.value,
            "message": self.message,
            "retryable": self.retryable,
        }
        if self.details:
            out["details"] = self.details
        return out

    def __str__(self) -> str:
        return f"{self.code.value}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, details={self.details!r})"


class UnsupportedProtocol(RstmdbError):
    code = ErrorCode.UNSUPPORTED_PROTOCOL


class BadRequest(RstmdbError):
    code = ErrorCode.BAD_REQUEST


class Unauthorized(RstmdbError):
    code = ErrorCode.UNAUTHORIZED


class AuthFailed(RstmdbError):
    code = ErrorCode.AUTH_FAILED


class NotFound(RstmdbError):
    code = ErrorCode.NOT_FOUND


class MachineNotFound(RstmdbError):
    code = ErrorCode.MACHINE_NOT_FOUND


class MachineVersionExists(RstmdbError):
    code = ErrorCode.MACHINE_VERSION_EXISTS


class MachineVersionLimitExceeded(RstmdbError):
    code = ErrorCode.MACHINE_VERSION_LIMIT_EXCEEDED


class InstanceNotFound(RstmdbError):
    code = ErrorCode.INSTANCE_NOT_FOUND


class InstanceExists(RstmdbError):
    code = ErrorCode.INSTANCE_EXISTS


class InvalidTransition(RstmdbError):
    code = ErrorCode.INVALID_TRANSITION


class GuardFailed(RstmdbError):
    code = ErrorCode.GUARD_FAILED


class Conflict(RstmdbError):
    code = ErrorCode.CONFLICT


class WalIoError(RstmdbError):
    code = ErrorCode.WAL_IO_ERROR


class InternalError(RstmdbError):
    code = ErrorCode.INTERNAL_ERROR


class RateLimited(RstmdbError):
    code = ErrorCode.RATE_LIMITED


ERROR_CLASSES: dict[ErrorCode, type[RstmdbError]] = {
    cls.code: cls
    for cls in (
        UnsupportedProtocol,
        BadRequest,
        Unauthorized,
        AuthFailed,
        NotFound,
        MachineNotFound,
        MachineVersionExists,
        MachineVersionLimitExceeded,
        InstanceNotFound,
        InstanceExists,
        InvalidTransition,
        GuardFailed,
        Conflict,
        WalIoError,
        InternalError,
        RateLimited,
    )
}


def error_from_dict(obj: dict[str, Any]) -> RstmdbError:
    """Rebuild the exception of a protocol error object (unknown codes: internal)."""
    try:
        cls = ERROR_CLASSES[ErrorCode(str(obj.get("code")))]
    except ValueError:
        cls = InternalError
    details = obj.get("details")
    return cls(str(obj.get("message", "")), details if isinstance(details, dict) else None)


class ClientConnectionError(Exception):
    """The client could not reach the server or lost the connection."""


class DataDirectoryLocked(Exception):
    """The data directory is already open for writing (one process per directory).

    ``path`` is the directory, ``pid`` the holder's process id (``None`` when it
    has not written it yet).
    """

    def __init__(self, path: str, pid: int | None) -> None:
        if pid is None:
            holder = "another process"
        elif pid == os.getpid():
            holder = f"this process (pid {pid}); close the other Database first"
        else:
            holder = f"another process (pid {pid})"
        super().__init__(f"data directory {path} is in use by {holder}")
        self.path = path
        self.pid = pid


class CorruptionError(Exception):
    """Stored data is damaged in a way recovery must not repair on its own.

    ``path`` and ``position`` name the file and byte where the damage starts.
    """

    def __init__(self, message: str, path: str, position: int) -> None:
        super().__init__(f"{message} ({path} at byte {position})")
        self.path = path
        self.position = position
