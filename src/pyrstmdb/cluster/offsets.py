"""Partition sequence numbers ↔ protocol offsets (pure).

Each partition numbers its log entries 1, 2, 3, … (``sequence``). With one
partition the offsets are those of the in-memory log, ``FIRST_OFFSET +
sequence - 1``: one strictly increasing number space (DECISIONS 11) that starts
where a single server's does. With ``P > 1`` an offset is ``(sequence << 12) |
partition`` (CLUSTER §5), so it names its partition in its low 12 bits.
"""

from __future__ import annotations

from pyrstmdb.storage.store import FIRST_OFFSET

PARTITION_BITS = 12
MAX_PARTITIONS = 1 << PARTITION_BITS
_MASK = MAX_PARTITIONS - 1


def offset_of(sequence: int, partition: int, partitions: int) -> int:
    """The offset of entry ``sequence`` (1-based) of ``partition``."""
    if partitions == 1:
        return FIRST_OFFSET + sequence - 1
    return (sequence << PARTITION_BITS) | partition


def first_sequence_at(offset: int, partition: int, partitions: int) -> int:
    """The smallest sequence of ``partition`` whose offset is ``>= offset`` (at least 1)."""
    if partitions == 1:
        return max(1, offset - FIRST_OFFSET + 1)
    sequence = offset >> PARTITION_BITS
    if offset & _MASK > partition:
        sequence += 1
    return max(1, sequence)
