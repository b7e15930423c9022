"""The network clients of pyrstmdb: ``Client`` (blocking) and ``AsyncClient`` (asyncio).

Both have the method names, arguments and typed results of the embedded
``pyrstmdb.Database``, so moving between embedded and client/server use is a
one-line change::

    from pyrstmdb.client import Client

    db = Client("127.0.0.1:7401")      # instead of Database()
    db.put_machine("order", 1, definition)

Errors are the same ``RstmdbError`` classes the embedded database raises;
transport failures raise ``ClientConnectionError`` naming the address.
"""

from pyrstmdb.client.aio import AsyncClient, AsyncPipeline
from pyrstmdb.client.api import Commands, ProtocolViolation, ServerInfo, UnwatchResult
from pyrstmdb.client.connection import RequestTimeout
from pyrstmdb.client.events import Event, HistoryLostWarning, Notice, SubscriptionWarning
from pyrstmdb.client.options import DEFAULT_ADDRESS, ClientArgs, ClientOptions
from pyrstmdb.client.stream import AsyncSubscription
from pyrstmdb.client.sync import Client, Pipeline, Subscription
from pyrstmdb.errors import ClientConnectionError

__all__ = [
    "DEFAULT_ADDRESS",
    "AsyncClient",
    "AsyncPipeline",
    "AsyncSubscription",
    "Client",
    "ClientArgs",
    "ClientConnectionError",
    "ClientOptions",
    "Commands",
    "Event",
    "HistoryLostWarning",
    "Notice",
    "Pipeline",
    "ProtocolViolation",
    "RequestTimeout",
    "ServerInfo",
    "Subscription",
    "SubscriptionWarning",
    "UnwatchResult",
]
