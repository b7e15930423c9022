"""The real fsync helper, except that it answers EIO to chosen requests (tests only).

Usage: python flaky_fsync_helper.py FAIL_AT[,FAIL_AT...] SOCKET_FD
Requests are numbered from 1; the listed ones are answered with EIO without syncing.
"""

from __future__ import annotations

import errno
import os
import sys

from pyrstmdb.storage.wal import fsync_helper


def main() -> int:
    failing = {int(n) for n in sys.argv[1].split(",") if n}
    real_sync = fsync_helper._sync
    count = 0

    def sync(fds: list[int]) -> int:
        nonlocal count
        count += 1
        if count not in failing:
            return real_sync(fds)
        for fd in fds:
            os.close(fd)
        return errno.EIO

    fsync_helper._sync = sync
    return fsync_helper.main([sys.argv[0], sys.argv[2]])


if __name__ == "__main__":
    raise SystemExit(main())
