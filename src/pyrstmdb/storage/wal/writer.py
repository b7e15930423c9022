"""Turning a batch of records into per-segment writes, and undoing a failed one.

:func:`plan_batch` encodes a batch (sequence numbers are provisional until the write
succeeds) and splits it into groups, one per segment touched, following the rotation rule
of STORAGE §2: a new segment starts when the active one is not empty and the records would
push it past the size limit; a record larger than the limit goes alone into a fresh
segment; a batch may also be told to start a fresh segment whatever the active one holds.
:func:`write_groups` issues one ``write`` per group and raises ``OSError``
unchanged, after recording in the returned :class:`Placement` what must be undone.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from .fileio import CREATE_FLAGS, FileIO, write_fully
from .layout import HEADER_SIZE, segment_name
from .record import encode_header


@dataclass(frozen=True, slots=True)
class Group:
    """Records ``start..stop`` of a batch, written together; ``fresh`` opens a new segment."""

    fresh: bool
    start: int
    stop: int


@dataclass(frozen=True, slots=True)
class Batch:
    """An encoded batch: headers, record sizes and how it is split across segments."""

    headers: list[bytes]
    sizes: list[int]
    groups: list[Group]

    @property
    def total(self) -> int:
        return sum(self.sizes)


@dataclass(slots=True)
class Placement:
    """Where each group landed: new segments opened and every record's (segment, position)."""

    new_segments: list[tuple[int, str, int]] = field(default_factory=list)  # id, path, fd
    positions: list[tuple[int, int]] = field(default_factory=list)
    ends: dict[int, int] = field(default_factory=dict)  # segment id -> size after the batch
    #: When not ``None``, groups are collected here as (fd, bytes) instead of written.
    deferred: list[tuple[int, bytes]] | None = None


def plan_batch(
    items: Sequence[tuple[int, bytes]],
    first_sequence: int,
    active_size: int,
    limit: int,
    *,
    fresh: bool = False,
) -> Batch:
    """Encode ``items`` with sequences from ``first_sequence`` and split them by segment.

    ``fresh`` puts the first record into a new segment even when the active one has room.
    """
    headers = [
        encode_header(type_code, payload, first_sequence + index)
        for index, (type_code, payload) in enumerate(items)
    ]
    sizes = [HEADER_SIZE + len(payload) for _type, payload in items]
    if not fresh:
        return Batch(headers, sizes, split_groups(sizes, active_size, limit))
    groups = split_groups(sizes, 0, limit)
    groups[0] = Group(True, groups[0].start, groups[0].stop)
    return Batch(headers, sizes, groups)


def split_groups(sizes: Sequence[int], active_size: int, limit: int) -> list[Group]:
    """Split records of these sizes into per-segment groups.

    A batch that fits into one segment stays together: it starts a new segment when the
    active one is not empty and would overflow. A larger batch is split record by record
    with the same rule.
    """
    total = sum(sizes)
    if total <= limit or len(sizes) == 1:
        return [Group(active_size > 0 and active_size + total > limit, 0, len(sizes))]
    groups: list[Group] = []
    filled = active_size
    start = 0
    fresh = False
    for index, size in enumerate(sizes):
        if filled > 0 and filled + size > limit:
            if index > start:
                groups.append(Group(fresh, start, index))
            start, filled, fresh = index, 0, True
        filled += size
    groups.append(Group(fresh, start, len(sizes)))
    return groups


def write_groups(
    fileio: FileIO,
    directory: str,
    active: tuple[int, int, int],
    items: Sequence[tuple[int, bytes]],
    batch: Batch,
    placement: Placement,
) -> None:
    """Write each group with one call (or queue it, see ``Placement.deferred``); ``active``
    is (segment id, fd, size).

    ``placement`` is filled in as segments are created and records placed, so that after
    an ``OSError`` the caller knows which files to remove.
    """
    segment_id, fd, position = active
    for group in batch.groups:
        if group.fresh:
            segment_id += 1
            path = os.path.join(directory, segment_name(segment_id))
            fd = fileio.open(path, CREATE_FLAGS)
            placement.new_segments.append((segment_id, path, fd))
            position = 0
        parts: list[bytes] = []
        for index in range(group.start, group.stop):
            placement.positions.append((segment_id, position))
            parts.append(batch.headers[index])
            parts.append(items[index][1])
            position += batch.sizes[index]
        data = b"".join(parts)
        if placement.deferred is None:
            write_fully(fileio, fd, data)
        else:
            placement.deferred.append((fd, data))
        placement.ends[segment_id] = position
