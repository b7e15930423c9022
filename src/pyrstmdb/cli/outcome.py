"""What a command's outcome prints and the exit status it stands for.

Shared by one-shot commands (:mod:`pyrstmdb.cli.main`) and the REPL
(:mod:`pyrstmdb.cli.repl`): :func:`emit` prints a handler's :class:`Output`,
:func:`error_line` and :func:`report` print the one line for an error.
"""

from __future__ import annotations

from typing import TextIO

from pyrstmdb.cli import render
from pyrstmdb.cli.context import ConnectFailed, Context, Output, UsageError
from pyrstmdb.errors import RstmdbError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def emit(ctx: Context, output: Output | None) -> int:
    """Print ``output``; returns the exit status it stands for."""
    if output is None:
        return EXIT_OK
    if ctx.json and output.doc is not None:
        print(render.compact_json(output.doc), file=ctx.out, flush=True)
    elif output.text:
        print(output.text, file=ctx.out, flush=True)
    if output.note:
        print(ctx.style.dim(output.note), file=ctx.err, flush=True)
    if output.failure:
        print(f"Error: {output.failure}", file=ctx.err, flush=True)
        return EXIT_ERROR
    return EXIT_OK


def error_line(error: BaseException) -> str:
    """``Error [CODE]: message`` for a server error, ``Error: …`` for others."""
    if isinstance(error, RstmdbError):
        return f"Error [{error.code}]: {error.message}"
    return f"Error: {error}"


def report(error: BaseException, err: TextIO) -> int:
    """Print the one line for ``error``; returns the exit status."""
    if isinstance(error, ConnectFailed):
        print(f"Connection failed: {error}", file=err)
    elif isinstance(error, UsageError):
        print(f"rstmdb-cli: error: {error} (see --help)", file=err)
        return EXIT_USAGE
    else:
        print(error_line(error), file=err)
    return EXIT_ERROR


__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "emit",
    "error_line",
    "report",
]
