"""Reading ranges of the log: which bytes of which segments, streamed as entries.

:func:`plan_spans` turns an offset range into per-segment byte spans using the segments'
sparse indexes (pure, called under the log's lock); :func:`stream_spans` reads them one
segment at a time in bounded chunks. Reading raises ``CorruptionError`` for damaged bytes
inside a span and ``OSError`` when a file cannot be read.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence

from .fileio import FileIO
from .layout import HEADER_SIZE, offset_position, offset_segment
from .model import WalEntry
from .segment import ReadSpan, Segment, read_batches


def plan_spans(
    segments: Sequence[Segment], from_offset: int, end: int, verified_end: int = 0
) -> list[ReadSpan]:
    """The spans holding the records with ``from_offset <= offset < end``.

    Records below ``verified_end`` (checked one by one when the log was opened) are read
    without checking their CRCs a second time.
    """
    first_id, first_position = offset_segment(from_offset), offset_position(from_offset)
    end_id, end_position = offset_segment(end), offset_position(end)
    spans: list[ReadSpan] = []
    for segment in segments:
        segment_id = segment.segment_id
        if segment_id < first_id or segment_id > end_id:
            continue
        # Records starting before ``end`` are read whole, even when ``end`` falls inside one.
        before = segment.size if segment_id < end_id else min(end_position, segment.size)
        skip = first_position if segment_id == first_id else 0
        if skip >= before:
            continue
        begin = segment.start_for(skip)
        checked = offset_position(verified_end) if offset_segment(verified_end) == segment_id else 0
        if segment_id < offset_segment(verified_end):
            checked = segment.size
        span = ReadSpan(segment_id, segment.path, begin, segment.size, skip, before, checked)
        spans.append(span)
    return spans


def stream_spans(
    fileio: FileIO, spans: Sequence[ReadSpan], count_bytes: Callable[[int], None]
) -> Generator[WalEntry, None, None]:
    """Yield the entries of every span in order; report the record bytes read at the end."""
    total = 0
    try:
        for span in spans:
            for batch in read_batches(fileio, span):
                for entry in batch:
                    total += HEADER_SIZE + len(entry.payload)
                    yield entry
    finally:
        count_bytes(total)


def stream_batches(
    fileio: FileIO, spans: Sequence[ReadSpan], count_bytes: Callable[[int], None]
) -> Generator[list[WalEntry], None, None]:
    """Like :func:`stream_spans`, one list of entries per chunk read."""
    total = 0
    try:
        for span in spans:
            for batch in read_batches(fileio, span):
                total += HEADER_SIZE * len(batch) + sum(len(entry.payload) for entry in batch)
                yield batch
    finally:
        count_bytes(total)
