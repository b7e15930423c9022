"""Logging set-up for the server: level and format from the config.

The format ``auto`` (the default) writes readable text when standard error is a
terminal and one JSON object per line otherwise; ``text`` and ``json`` force one.

Log lines go to standard error, one line per record, so standard output stays free
for the single ``listening on HOST:PORT`` line. ``trace`` is level 5. Nothing in the
server logs a token or a request's params; per-request lines exist only at ``debug``.
Raises nothing.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

import orjson

from pyrstmdb.config import TRACE, LoggingConfig

_LEVEL_NAMES = {TRACE: "TRACE", logging.WARNING: "WARN"}


def _level_name(record: logging.LogRecord) -> str:
    return _LEVEL_NAMES.get(record.levelno, record.levelname)


def _timestamp(record: logging.LogRecord) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{stamp}.{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """One compact JSON object per record: ts, level, target, message [, error]."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str] = {
            "ts": _timestamp(record),
            "level": _level_name(record),
            "target": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


class TextFormatter(logging.Formatter):
    """``2024-01-01T00:00:00.000Z  INFO pyrstmdb.server: message``."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{_timestamp(record)} {_level_name(record):>5} {record.name}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def uses_json(settings: LoggingConfig, stream: TextIO) -> bool:
    """JSON unless the format says text, or is ``auto`` and ``stream`` is a terminal."""
    if settings.format != "auto":
        return settings.format == "json"
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):
        return True


def configure(settings: LoggingConfig, stream: TextIO | None = None) -> None:
    """Route the ``pyrstmdb`` loggers to ``stream`` (stderr) at the configured level."""
    logging.addLevelName(TRACE, "TRACE")
    target = stream or sys.stderr
    handler = logging.StreamHandler(target)
    handler.setFormatter(JsonFormatter() if uses_json(settings, target) else TextFormatter())
    root = logging.getLogger("pyrstmdb")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.python_level)
    root.propagate = False
