"""Real-time subscriptions: WATCH_INSTANCE, WATCH_ALL and UNWATCH behind one ``Hub``.

The hub receives every committed record from ``Core`` (only after it is
durable, in log order), matches applied events against each subscription's
filter and hands PROTOCOL §5 event messages to the connection's ``Sink``.
Replay from any ``from_offset`` and slow subscribers are served from the log,
so a subscriber never misses or repeats an event; if the history it owes was
compacted away it is told so with a ``HISTORY_LOST`` notice.

=================  ==================================================
module             owns
=================  ==================================================
``hub``            ``Hub``: registration, live delivery, catch-up
``subscription``   ``Sink`` protocol, one subscription's cursor state
``registry``       subscriptions by id, sink and instance
``history``        bounded, shared log reads in worker threads
``filters``        filter kinds and the wire messages
=================  ==================================================
"""

from pyrstmdb.subscriptions.filters import HISTORY_LOST
from pyrstmdb.subscriptions.hub import Hub
from pyrstmdb.subscriptions.subscription import Sink

__all__ = ["HISTORY_LOST", "Hub", "Sink"]
