"""The ``rstmdb`` console script.

::

    rstmdb [--config PATH] [--bind HOST:PORT] [--http-bind HOST:PORT] [--data-dir DIR]
    rstmdb check [--data-dir DIR] [--repair | --salvage]
    rstmdb restore FILE [--data-dir DIR]
    rstmdb cluster status --dsn DSN [--json]
    rstmdb --version

Start-up binds the address first, then loads the data directory in a worker
thread while :class:`~pyrstmdb.server.starting.Gate` answers health checks with
status ``starting``; a replay longer than a second logs its progress.

Configuration: defaults < YAML file (``--config`` or ``RSTMDB_CONFIG``) <
``RSTMDB_*`` environment < flags. Once listening, the server prints one line
``listening on HOST:PORT`` to standard output, then ``http on
http://HOST:PORT/`` when the HTTP API is enabled (and ``metrics on HOST:PORT``
when metrics are enabled); logs go to standard error. SIGINT and SIGTERM shut
down gracefully and the exit status is 0.

Every startup failure (bad configuration, data that cannot be opened, an
address in use, an unreadable certificate) prints one line
``rstmdb: <what failed>`` to standard error and exits non-zero, without a
traceback; a data directory another process holds is one of them (the line
names the holder's PID). ``check`` runs the offline data-directory checker;
``--repair`` and ``--salvage`` refuse a held directory the same way. ``restore``
turns a backup archive into a new data directory (:mod:`pyrstmdb.server.restore`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

from pyrstmdb import __version__, aio
from pyrstmdb.cluster import status as cluster_status
from pyrstmdb.config import Config, ConfigError, load_from_environment
from pyrstmdb.database import Database
from pyrstmdb.errors import CorruptionError, DataDirectoryLocked, RstmdbError
from pyrstmdb.server import logs
from pyrstmdb.server.app import Server, StartupError, listen
from pyrstmdb.server.starting import Gate, ReplayReport

log = logging.getLogger("pyrstmdb.server")

EXIT_CONFIG = 2
EXIT_FAILURE = 1

EPILOG = """\
settings (later ones win, key by key): built-in defaults, the YAML file
(--config or RSTMDB_CONFIG), RSTMDB_* environment variables, then these flags.
Common variables: RSTMDB_BIND, RSTMDB_DATA, RSTMDB_FSYNC_POLICY, RSTMDB_AUTH_REQUIRED,
RSTMDB_AUTH_TOKEN_HASH, RSTMDB_TLS_ENABLED, RSTMDB_METRICS_ENABLED, RSTMDB_LOG_LEVEL,
RSTMDB_LOG_FORMAT. Every setting and its variable: docs/CONFIGURATION.md in the
pyrstmdb sources.

Once ready the server prints 'listening on HOST:PORT' on standard output; logs go to
standard error (text on a terminal, JSON otherwise). While it loads the data the
port already answers PING/HELLO/INFO with status "starting"."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rstmdb",
        description="rstmdb state machine database server (pyrstmdb)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    parser.add_argument("-V", "--version", action="version", version=f"rstmdb {__version__}")
    parser.add_argument(
        "--config", metavar="PATH", help="YAML configuration file (env RSTMDB_CONFIG)"
    )
    parser.add_argument("--bind", metavar="HOST:PORT", help="address to listen on")
    parser.add_argument("--data-dir", metavar="DIR", help="data directory")
    parser.add_argument("--http-bind", metavar="HOST:PORT", help="address of the HTTP API")
    commands = parser.add_subparsers(dest="command", metavar="{check,restore,cluster}")
    check = commands.add_parser("check", help="check the data directory offline")
    check.add_argument("--data-dir", dest="check_data_dir", metavar="DIR")
    check.add_argument(
        "--repair", action="store_true", help="cut a torn tail, remove leftover temporary files"
    )
    check.add_argument(
        "--salvage",
        action="store_true",
        help="keep the log's longest consistent prefix, move the rest aside (implies --repair)",
    )
    restore = commands.add_parser("restore", help="restore a backup into an empty data directory")
    restore.add_argument("archive", metavar="FILE", help="archive written by rstmdb-cli backup")
    restore.add_argument("--data-dir", dest="restore_data_dir", metavar="DIR")
    cluster_status.add_parser(commands)
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

    try:
        return run_check(config.storage.data_dir, args.repair, sys.stdout, args.salvage)
    except DataDirectoryLocked as exc:
        return _fail(str(exc))


def _restore(args: argparse.Namespace) -> int:
    try:
        config = _load(args, args.restore_data_dir or args.data_dir)
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}", EXIT_CONFIG)
    from pyrstmdb.server.restore import run_restore

    return run_restore(args.archive, config.storage.data_dir, sys.stdout, sys.stderr)


def _open(config: Config, report: ReplayReport | None = None) -> Database:
    try:
        return Database.from_config(config, replay_progress=report)
    except DataDirectoryLocked as exc:
        raise StartupError(str(exc)) from None
    except (CorruptionError, RstmdbError, OSError) as exc:
        where = config.storage.data_dir
        raise StartupError(f"cannot open data directory {where!r}: {exc}") from None


async def _load_data(config: Config, gate: Gate) -> Database | None:
    """Load the data while the gate answers; ``None``: a signal asked to stop meanwhile."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        db = await asyncio.to_thread(_open, config, gate.report)
    except BaseException:
        gate.close()
        raise
    if stop.is_set():
        log.info("stopped during start-up")
        gate.close()
        await asyncio.to_thread(db.close)
        return None
    gate.report.finished()
    return db


async def _run(config: Config) -> None:
    gate = Gate(config.auth.required, config.auth.token_hashes, ReplayReport())
    if not config.tls.enabled:  # a TLS listener opens once loaded (see Gate.listen)
        await listen(
            "",
            config.network.bind_addr,
            gate.listen(config.network.bind_host, config.network.bind_port),
        )
    # debug: a start-up failure stays the one line `rstmdb: …`; a long replay logs progress
    log.debug("starting: loading %s (health checks get status 'starting')", config.storage.data_dir)
    db = await _load_data(config, gate)
    if db is None:
        return
    server = Server(config, db, gate)
    try:
        await server.start()
    except BaseException:
        gate.close()
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
    others = server.addresses[1:]
    log.info(
        "ready in %.1f s%s (tls: %s, auth: %s, data: %s)",
        gate.report.elapsed(),
        f", also listening on {', '.join(others)}" if others else "",
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
        aio.run(_run(config))
    except StartupError as exc:
        return _fail(str(exc))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "check":
            return _check(args)
        if args.command == "restore":
            return _restore(args)
        if args.command == "cluster":
            return cluster_status.run(args)
        return _serve(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        log.debug("startup failed", exc_info=exc)
        return _fail(f"unexpected error: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
