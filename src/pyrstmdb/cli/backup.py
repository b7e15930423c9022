"""``rstmdb-cli backup FILE``: take a consistent backup of the server into one file.

The server streams its newest checkpoint and its log up to the durable end
(:mod:`pyrstmdb.client.backup`); ``FILE`` appears only once the archive is
complete and on disk. Progress goes to standard error about once a second;
the summary (or with ``--json`` the archive's manifest) to standard output.
Raises ``CliError`` when the archive cannot be written, and what the client
raises.
"""

from __future__ import annotations

import time

from pyrstmdb.cli import render
from pyrstmdb.cli.context import CliError, Context, Output
from pyrstmdb.client.backup import Progress, write_backup

PROGRESS_EVERY_SECS = 1.0


def _progress(ctx: Context) -> Progress:
    last = time.monotonic()

    def report(copied: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < PROGRESS_EVERY_SECS or copied >= total:
            return
        last = now
        share = copied * 100 // total if total else 100
        print(
            f"backup: {render.human_size(copied)} of {render.human_size(total)} ({share}%)",
            file=ctx.err,
            flush=True,
        )

    return report


def backup(ctx: Context) -> Output:
    path: str = ctx.ns.file
    try:
        manifest = write_backup(ctx.client, path, _progress(ctx))
    except OSError as exc:
        raise CliError(f"cannot write backup {path}: {exc.strerror or exc}") from None
    doc = {"path": path, **manifest.to_dict()}
    text = "\n".join(
        [
            ctx.style.green(f"Backup written to {path}"),
            *render.fields(
                [
                    ("Files", len(manifest.files)),
                    ("Size", render.human_size(manifest.total_bytes)),
                    ("Log up to offset", manifest.end_offset),
                    ("Backup id", manifest.backup_id),
                ]
            ),
        ]
    )
    return Output(doc, text)
