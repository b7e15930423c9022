"""The ``rstmdb`` console script.

::

    rstmdb [--config PATH] [--bind HOST:PORT] [--http-bind HOST:PORT] [--data-dir DIR]
    rstmdb check [--data-dir DIR] [--repair]

Configuration: defaults < YAML file (``--config`` or ``RSTMDB_CONFIG``) <
``RSTMDB_*`` environment < flags. Once listening, the server prints one line
``listening on HOST:PORT`` to standard output, then ``http on
http://HOST:PORT/`` when the HTTP API is enabled (and ``metrics on HOST:PORT``
when metrics are enabled); logs go to standard error. SIGINT and SIGTERM shut
down gracefully and the exit status is 0.

Every startup failure (bad configuration, data that cannot be opened, an
address in use, an unreadable certificate) prints one line
``rstmdb: <what failed>`` to standard error and exits non-zero, without a
traceback. ``check`` runs the offline data-directory checker.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

from pyrstmdb import aio
from pyrstmdb.config import Config, ConfigError, load_from_environment
from pyrstmdb.database import Database
from pyrstmdb.errors import CorruptionError, RstmdbError
from pyrstmdb.server import logs
from pyrstmdb.server.app import Server, StartupError

log = logging.getLogger("pyrstmdb.server")

EXIT_CONFIG = 2
EXIT_FAILURE = 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rstmdb", description="rstmdb state machine database server (pyrstmdb)"
    )
    parser.add_argument("--config", metavar="PATH", help="YAML configuration file")
    parser.add_argument("--bind", metavar="HOST:PORT", help="address to listen on")
    parser.add_argument("--data-dir", metavar="DIR", help="data directory")
    parser.add_argument("--http-bind", metavar="HOST:PORT", help="address of the HTTP API")
    commands = parser.add_subparsers(dest="command", metavar="{check}")
    check = commands.add_parser("check", help="check the data directory offline")
    check.add_argument("--data-dir", dest="check_data_dir", metavar="DIR")
    check.add_argument("--repair", action="store_true", help="cut a torn tail of the log")
    return parser


def _fail(message: str, status: int = EXIT_FAILURE) -> int:
    print(f"rstmdb: {message}", file=sys.stderr, flush=True)
    return status


def _load(args: argparse.Namespace, data_dir: str | None) -> Config:
    overrides = {
        "bind": args.bind,
        "http_bind": getattr(args, "http_bind", None),
        "data_dir": data_dir,
    }
    return load_from_environment(os.environ, args.config, overrides)


def _check(args: argparse.Namespace) -> int:
    try:
        config = _load(args, args.check_data_dir or args.data_dir)
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}", EXIT_CONFIG)
    from pyrstmdb.storage.check import run_check

    return run_check(config.storage.data_dir, args.repair, sys.stdout)


def _open(config: Config) -> Database:
    try:
        return Database.from_config(config)
    except (CorruptionError, RstmdbError, OSError) as exc:
        where = config.storage.data_dir
        raise StartupError(f"cannot open data directory {where!r}: {exc}") from None


async def _run(config: Config, db: Database) -> None:
    server = Server(config, db)
    try:
        await server.start()
    except BaseException:
        await asyncio.to_thread(db.close)
        raise
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, server.stop)
    print(f"listening on {server.addresses[0]}", flush=True)
    if server.http_url is not None:
        print(f"http on {server.http_url}", flush=True)
    if server.metrics_address is not None:
        print(f"metrics on {server.metrics_address}", flush=True)
    log.info(
        "listening on %s (tls: %s, auth: %s, data: %s)",
        ", ".join(server.addresses),
        "on" if config.tls.enabled else "off",
        "required" if config.auth.required else "off",
        config.storage.data_dir,
    )
    await server.serve_until_stopped()


def _serve(args: argparse.Namespace) -> int:
    try:
        config = _load(args, args.data_dir)
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}", EXIT_CONFIG)
    logs.configure(config.logging)
    for warning in config.warnings:
        log.warning("%s", warning)
    try:
        aio.run(_run(config, _open(config)))
    except StartupError as exc:
        return _fail(str(exc))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "check":
            return _check(args)
        return _serve(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        log.debug("startup failed", exc_info=exc)
        return _fail(f"unexpected error: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
