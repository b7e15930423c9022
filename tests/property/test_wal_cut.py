"""Property tests: a torn last segment recovers exactly its complete records; damage before
a valid record, or anywhere in an earlier segment, is refused with the right file and byte."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pyrstmdb.errors import CorruptionError
from pyrstmdb.storage.policy import FsyncPolicy
from pyrstmdb.storage.wal import Wal, segment_name
from pyrstmdb.storage.wal.record import encode_record

SEGMENT_SIZE = 512
PROPERTY_SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

payloads = st.lists(
    st.binary(min_size=0, max_size=120).filter(lambda b: b"WLOG" not in b),
    min_size=1,
    max_size=25,
)


@contextmanager
def _directory() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="walprop") as name:
        yield Path(name)


def _write(directory: Path, items: list[bytes]) -> list[tuple[int, int, bytes]]:
    """Write the payloads; return (segment id, position, payload) per record."""
    with Wal.open(directory, segment_size=SEGMENT_SIZE, policy=FsyncPolicy("never")) as log:
        offsets = log.append([(3, p) for p in items])
    return [(off >> 40, off & ((1 << 40) - 1), p) for off, p in zip(offsets, items, strict=True)]


def _reopen(directory: Path) -> tuple[list[bytes], int]:
    with Wal.open(directory, segment_size=SEGMENT_SIZE) as log:
        return [e.payload for e in log.entries()], log.recovery.torn_bytes


@pytest.mark.slow
@PROPERTY_SETTINGS
@given(items=payloads, data=st.data())
def test_cutting_the_last_segment_anywhere_keeps_exactly_the_complete_records(
    items: list[bytes], data: st.DataObject
) -> None:
    with _directory() as directory:
        placed = _write(directory, items)
        last = max(segment for segment, _pos, _p in placed)
        path = directory / segment_name(last)
        cut = data.draw(st.integers(0, path.stat().st_size), label="cut")
        os.truncate(path, cut)
        expected = [
            p for seg, pos, p in placed if seg < last or (seg == last and pos + 24 + len(p) <= cut)
        ]
        kept_end = max(
            (
                pos + 24 + len(p)
                for seg, pos, p in placed
                if seg == last and pos + 24 + len(p) <= cut
            ),
            default=0,
        )
        got, torn = _reopen(directory)
        assert got == expected
        assert torn == cut - kept_end
        assert path.stat().st_size == kept_end
        assert _reopen(directory) == (expected, 0)


@pytest.mark.slow
@PROPERTY_SETTINGS
@given(items=payloads, garbage=st.binary(min_size=1, max_size=300))
def test_random_garbage_after_the_last_record_is_cut(items: list[bytes], garbage: bytes) -> None:
    assume(b"WLOG" not in garbage)
    with _directory() as directory:
        placed = _write(directory, items)
        last = max(segment for segment, _pos, _p in placed)
        path = directory / segment_name(last)
        size = path.stat().st_size
        with open(path, "ab") as handle:
            handle.write(garbage)
        got, torn = _reopen(directory)
        assert got == items
        assert torn == len(garbage)
        assert path.stat().st_size == size
        assert Path(str(path) + ".broken").read_bytes() == garbage


# Bytes of a record whose damage is always detectable: magic, type, length, crc, payload
# (flags, reserved and sequence are not covered by the checksum).
def _checked_byte(record_length: int, pick: int) -> int:
    checked = [*range(0, 5), *range(8, 16), *range(24, record_length)]
    return checked[pick % len(checked)]


def _flip(path: Path, position: int, value: int, at_type: bool) -> None:
    data = bytearray(path.read_bytes())
    data[position] = 0x80 | data[position] if at_type else data[position] ^ value
    path.write_bytes(bytes(data))


@PROPERTY_SETTINGS
@given(
    items=payloads.filter(lambda items: len(items) >= 2),
    pick=st.integers(0, 10_000),
    record_pick=st.integers(0, 10_000),
    value=st.integers(1, 255),
)
def test_damage_before_a_valid_record_or_in_an_earlier_segment_is_refused(
    items: list[bytes], pick: int, record_pick: int, value: int
) -> None:
    with _directory() as directory:
        placed = _write(directory, items)
        last = max(segment for segment, _pos, _p in placed)
        # any record that is not the very last one: either in an earlier segment, or
        # followed by a valid record in the last segment
        candidates = placed[:-1]
        segment, position, body = candidates[record_pick % len(candidates)]
        offset = _checked_byte(24 + len(body), pick)
        path = directory / segment_name(segment)
        _flip(path, position + offset, value, at_type=offset == 4)
        assert segment < last or (segment, position) != placed[-1][:2]
        try:
            _reopen(directory)
        except CorruptionError as error:
            assert error.path == str(path)
            assert error.position == position
        else:
            raise AssertionError(f"damage at {path.name}:{position + offset} accepted")


@PROPERTY_SETTINGS
@given(
    items=payloads,
    tail_payload=st.binary(max_size=100).filter(lambda b: b"WLOG" not in b),
    truncate=st.booleans(),
    pick=st.integers(0, 10_000),
    value=st.integers(1, 255),
)
@pytest.mark.slow
def test_a_damaged_or_partial_record_after_the_last_one_is_cut(
    items: list[bytes], tail_payload: bytes, truncate: bool, pick: int, value: int
) -> None:
    with _directory() as directory:
        placed = _write(directory, items)
        last = max(segment for segment, _pos, _p in placed)
        path = directory / segment_name(last)
        size = path.stat().st_size
        record = encode_record(3, tail_payload, len(items) + 1)
        if truncate:
            tail = record[: pick % len(record)]
        else:
            damaged = bytearray(record)
            at = _checked_byte(len(record), pick)
            damaged[at] = 0x80 | damaged[at] if at == 4 else damaged[at] ^ value
            tail = bytes(damaged)
        with open(path, "ab") as handle:
            handle.write(tail)
        got, torn = _reopen(directory)
        assert got == items
        assert torn == len(tail)
        assert path.stat().st_size == size
