"""The ``rstmdb`` TCP server: RCP over asyncio on top of the shared ``Core``.

Layout (nothing here holds business rules; those live in ``engine`` and ``core``)::

    main.py        the ``rstmdb`` console script: flags, config, one-line startup failures
    app.py         listening (TLS, mTLS), connection limit, idle sweep, graceful shutdown
    connection.py  one client: bytes -> codec -> dispatch -> ordered responses -> bytes
    dispatch.py    operation -> handler table, exceptions -> error responses, per-op metrics
    session.py     HELLO / AUTH / wire mode / authenticated state (no I/O)
    handlers/      one module per group of operations
    durability.py  fsync completions from the store's thread -> asyncio futures
    metrics.py     Prometheus metrics and their small HTTP listener
    logs.py        logging set-up (level, text or JSON lines)
"""

from pyrstmdb.server.app import Server, StartupError

__all__ = ["Server", "StartupError"]
