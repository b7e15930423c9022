"""Request handlers, one module per group of operations.

A handler is ``(ctx, params) -> result dict | Answer``: a plain dict is the
finished protocol result; an :class:`~pyrstmdb.server.handlers.base.Answer`
carries a future to wait for (durability, a worker thread) and an optional
action to run once the response is written. Handlers raise ``RstmdbError``
subclasses; :mod:`pyrstmdb.server.dispatch` turns them into error responses.
"""
