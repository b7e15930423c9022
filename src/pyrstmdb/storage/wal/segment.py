"""One segment file: its in-memory bookkeeping, whole-file analysis and range reads.

A :class:`Segment` tracks a file's id, path, size and a sparse index of record positions
(one every :data:`INDEX_STRIDE` bytes) so a read can start near any offset without
rescanning the file. :func:`analyze` classifies a segment's bytes (clean, torn tail, real
corruption); :func:`read_entries` streams the records of a byte range in bounded chunks.

Raises ``OSError`` from the file calls and ``CorruptionError`` when a range that should
hold only whole, valid records does not.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from pyrstmdb.errors import CorruptionError

from .fileio import READ_FLAGS, FileIO, read_exactly
from .layout import MAGIC_BYTES, POSITION_BITS
from .model import WalEntry
from .record import SEQUENCE, Decoder, Problem, valid_record_at

#: Distance between sampled record positions in a segment's sparse index.
INDEX_STRIDE: Final = 64 * 1024
#: Bytes read per call when streaming records.
READ_CHUNK: Final = 4 * 1024 * 1024


@dataclass(slots=True)
class Segment:
    """Bookkeeping for one segment file: id, path, size and sampled record positions."""

    segment_id: int
    path: str
    size: int = 0
    marks: list[int] = field(default_factory=list)

    def note_record(self, position: int) -> None:
        """Remember where a record starts if the last sample is far enough behind."""
        marks = self.marks
        if not marks or position >= marks[-1] + INDEX_STRIDE:
            marks.append(position)

    def start_for(self, position: int) -> int:
        """A record start at or before ``position`` from which to scan forward."""
        index = bisect_right(self.marks, position) - 1
        return self.marks[index] if index >= 0 else 0

    def cut(self, size: int) -> None:
        """Forget everything at and after byte ``size``."""
        self.size = size
        while self.marks and self.marks[-1] >= size:
            self.marks.pop()


@dataclass(frozen=True, slots=True)
class Analysis:
    """What a segment's bytes hold.

    ``valid_end`` is the end of the last valid record. ``problem`` is where decoding
    stopped early; ``torn`` says it may be cut as a torn tail, otherwise ``reason``
    explains why it is corruption.
    """

    records: int
    last_sequence: int
    valid_end: int
    marks: list[int]
    problem: Problem | None
    torn: bool
    reason: str


def analyze(data: bytes, last_sequence: int, tail: bool) -> Analysis:
    """Decode a whole segment and decide what any damage in it is.

    ``tail`` says the segment is the last one holding data, the only place a torn write
    can be. Damage there is torn when no valid record follows it anywhere in the file.
    """
    decoder = Decoder(data, 0, len(data), last_sequence)
    positions = decoder.positions()
    records = len(positions)
    marks: list[int] = []
    next_mark = 0
    for position in positions:
        if position >= next_mark:
            marks.append(position)
            next_mark = position + INDEX_STRIDE
    problem = decoder.problem
    torn, reason = _verdict(data, problem, tail)
    return Analysis(records, decoder.last_sequence, decoder.position, marks, problem, torn, reason)


def _verdict(data: bytes, problem: Problem | None, tail: bool) -> tuple[bool, str]:
    if problem is None:
        return False, ""
    what = f"{problem.kind} ({problem.detail})"
    if problem.kind == SEQUENCE:
        return False, what
    if not tail:
        return False, f"{what} in a segment that is not the last one"
    later = find_valid_record(data, problem.position + 1)
    if later is not None:
        return False, f"{what} followed by a valid record at byte {later}"
    return True, what


def find_valid_record(data: bytes, start: int) -> int | None:
    """The position of the first valid record whose header starts at or after ``start``."""
    position = data.find(MAGIC_BYTES, start)
    while position >= 0:
        if valid_record_at(data, position):
            return position
        position = data.find(MAGIC_BYTES, position + 1)
    return None


def read_whole(fileio: FileIO, path: str) -> bytes:
    """The complete contents of a file."""
    fd = fileio.open(path, READ_FLAGS)
    try:
        return read_exactly(fileio, fd, fileio.file_size(fd), 0)
    finally:
        fileio.close(fd)


@dataclass(frozen=True, slots=True)
class ReadSpan:
    """Records of one segment to stream: bytes ``begin..stop``, records starting in
    ``skip_below..starts_before`` (positions)."""

    segment_id: int
    path: str
    begin: int
    stop: int
    skip_below: int
    starts_before: int = 1 << 40
    verified_below: int = 0  # positions the open scan already checked record by record


def read_entries(fileio: FileIO, span: ReadSpan) -> Iterator[WalEntry]:
    """Stream the records of a span in chunks of about :data:`READ_CHUNK` bytes.

    A file that vanished (dropped segment) or shrank (records discarded after a failure)
    simply ends the stream; invalid bytes inside the span raise ``CorruptionError``.
    """
    for batch in read_batches(fileio, span):
        yield from batch


def read_batches(fileio: FileIO, span: ReadSpan) -> Iterator[list[WalEntry]]:
    """Like :func:`read_entries`, one list of entries per chunk read."""
    try:
        fd = fileio.open(span.path, READ_FLAGS)
    except FileNotFoundError:
        return
    try:
        yield from _stream(fileio, fd, span)
    finally:
        fileio.close(fd)


def _stream(fileio: FileIO, fd: int, span: ReadSpan) -> Iterator[list[WalEntry]]:
    base = span.segment_id << POSITION_BITS
    position = span.begin
    last_sequence = 0
    want = READ_CHUNK
    while position < span.stop:
        size = min(max(want, READ_CHUNK), span.stop - position)
        buf = read_exactly(fileio, fd, size, position)
        decoder = Decoder(buf, 0, len(buf), last_sequence)
        batch = decoder.collect(
            base + position, span.skip_below - position, span.verified_below - position
        )
        limit = base + span.starts_before
        if batch and batch[-1].offset >= limit:
            batch = [entry for entry in batch if entry.offset < limit]
        if batch:
            yield batch
        if position + decoder.position >= span.starts_before:
            return  # every record starting before the limit has been read
        if len(buf) < size:
            return  # the file shrank underneath: the rest was discarded after a failure
        problem = decoder.problem
        if problem is not None and (not problem.incomplete or size == span.stop - position):
            at = position + problem.position
            raise CorruptionError(f"{problem.kind} ({problem.detail})", span.path, at)
        last_sequence = decoder.last_sequence
        want = decoder.needed
        position += decoder.position
