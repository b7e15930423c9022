"""RCPX frames: layout, CRC32C, encoding, fatal faults, incremental decoding."""

from __future__ import annotations

import struct

import pytest
from rstmdb.protocol import Frame

from pyrstmdb.protocol import (
    FLAG_CRC_PRESENT,
    FLAG_MASK,
    HEADER,
    HEADER_SIZE,
    MAGIC,
    MAX_PAYLOAD,
    VERSION,
    FrameDecoder,
    FramingError,
    MessageTooLarge,
    crc32c,
    encode_frame,
    split_frame,
)

PING = b'{"type":"request","id":"1","op":"PING","params":{}}'
PING_HEADER = bytes.fromhex("52 43 50 58 00 01 00 01 00 00 00 00 00 33 C3 20 09 C4")


def header(
    *,
    magic: bytes = MAGIC,
    version: int = VERSION,
    flags: int = FLAG_CRC_PRESENT,
    header_len: int = 0,
    payload_len: int = 0,
    crc: int = 0,
) -> bytes:
    return struct.pack(">4sHHHII", magic, version, flags, header_len, payload_len, crc)


def test_layout_constants() -> None:
    assert HEADER.size == HEADER_SIZE == 18
    assert MAGIC == b"RCPX"
    assert MAX_PAYLOAD == 16_777_216
    assert FLAG_MASK == 0x000F


def test_crc32c_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytearray(b"123456789")) == 0xE3069283
    assert crc32c(memoryview(b"123456789")) == 0xE3069283
    assert crc32c(b"") == 0


def test_spec_example_header() -> None:
    assert len(PING) == 51
    frame = encode_frame(PING)
    assert frame[:HEADER_SIZE] == PING_HEADER
    assert frame[HEADER_SIZE:] == PING


def test_encode_matches_official_client_frame() -> None:
    assert encode_frame(PING) == Frame(PING).encode()
    assert encode_frame(b"") == Frame(b"").encode()


def test_official_client_decodes_our_frame() -> None:
    frame, rest = Frame.decode(encode_frame(PING) + b"RC")
    assert frame is not None
    assert frame.payload == PING
    assert rest == b"RC"


@pytest.mark.parametrize(
    "use_crc, extension", [(True, b""), (False, b""), (True, b"ext!"), (False, b"\x00" * 300)]
)
def test_decoder_reads_official_client_frames(use_crc: bool, extension: bytes) -> None:
    data = Frame(PING, use_crc=use_crc, header_extension=extension).encode()
    assert FrameDecoder().feed(data) == [PING]


def test_payload_at_limit_encodes_and_one_more_byte_does_not() -> None:
    assert len(encode_frame(b"a" * MAX_PAYLOAD)) == HEADER_SIZE + MAX_PAYLOAD
    with pytest.raises(MessageTooLarge) as info:
        encode_frame(b"a" * (MAX_PAYLOAD + 1))
    assert info.value.size == MAX_PAYLOAD + 1
    assert isinstance(info.value, FramingError)


FATAL_HEADERS = {
    "bad magic": header(magic=b"RCPY", payload_len=100),
    "other magic": header(magic=b"HTTP", payload_len=100),
    "version 0": header(version=0, payload_len=100),
    "version 2": header(version=2, payload_len=100),
    "flag 0x0010": header(flags=0x0011, payload_len=100),
    "flag 0x8000": header(flags=0x8000, payload_len=100),
    "payload over 16 MiB": header(payload_len=MAX_PAYLOAD + 1),
    "payload 4 GiB": header(payload_len=0xFFFFFFFF),
}


@pytest.mark.parametrize("name", FATAL_HEADERS)
def test_header_fault_raised_with_the_18th_byte(name: str) -> None:
    raw = FATAL_HEADERS[name]
    decoder = FrameDecoder()
    if name.endswith("magic"):  # visible in the first four bytes already
        with pytest.raises(FramingError, match="magic"):
            decoder.feed(raw[:4])
        return
    assert decoder.feed(raw[:17]) == []
    with pytest.raises(FramingError):
        decoder.feed(raw[17:])


def test_bad_magic_raised_before_the_header_is_complete() -> None:
    assert FrameDecoder().feed(b"RCP") == []
    with pytest.raises(FramingError, match="magic"):
        FrameDecoder().feed(b"RCQ")
    with pytest.raises(FramingError, match="magic"):
        FrameDecoder().feed(b"{")


def test_payload_len_exactly_16_mib_waits_for_the_payload() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(header(flags=0, payload_len=MAX_PAYLOAD)) == []
    assert decoder.buffered == HEADER_SIZE


def test_crc_mismatch_is_fatal() -> None:
    frame = bytearray(encode_frame(PING))
    frame[-2] ^= 0x01
    with pytest.raises(FramingError, match="CRC"):
        FrameDecoder().feed(bytes(frame))


def test_crc_mismatch_reported_when_payload_completes() -> None:
    raw = header(payload_len=len(PING), crc=crc32c(PING) ^ 1) + PING
    decoder = FrameDecoder()
    assert decoder.feed(raw[:-1]) == []
    with pytest.raises(FramingError):
        decoder.feed(raw[-1:])


@pytest.mark.parametrize("flags", [0x0000, 0x0002, 0x0004, 0x0008, 0x000E])
def test_frames_without_crc_flag_are_not_checked(flags: int) -> None:
    raw = header(flags=flags, payload_len=len(PING), crc=0xDEADBEEF) + PING
    assert FrameDecoder().feed(raw) == [PING]


def test_reserved_flags_with_crc_are_checked_and_accepted() -> None:
    raw = header(flags=0x000F, payload_len=len(PING), crc=crc32c(PING)) + PING
    assert FrameDecoder().feed(raw) == [PING]


def test_header_extension_is_skipped() -> None:
    extension = b"RCPX{\n" * 7
    raw = header(header_len=len(extension), payload_len=len(PING), crc=crc32c(PING))
    stream = raw + extension + PING + encode_frame(b"{}")
    assert FrameDecoder().feed(stream) == [PING, b"{}"]


def test_split_frame_reports_end_offset() -> None:
    stream = b"xx" + encode_frame(PING) + b"tail"
    payload, end = split_frame(stream, 2)
    assert payload == PING
    assert stream[end:] == b"tail"
    assert split_frame(stream[:10], 2) == (None, 2)


def test_every_split_offset_gives_the_same_payloads() -> None:
    extension = b"\x01\x02\x03"
    odd = header(flags=0, header_len=3, payload_len=2) + extension + b"{}"
    stream = encode_frame(PING) + odd + encode_frame(b"") + encode_frame(b'{"a":[1,2]}')
    expected = [PING, b"{}", b"", b'{"a":[1,2]}']
    for cut in range(len(stream) + 1):
        decoder = FrameDecoder()
        assert decoder.feed(stream[:cut]) + decoder.feed(stream[cut:]) == expected, cut
        assert decoder.buffered == 0


def test_byte_at_a_time() -> None:
    stream = encode_frame(PING) * 3
    decoder = FrameDecoder()
    out: list[bytes] = []
    for i in range(len(stream)):
        out += decoder.feed(stream[i : i + 1])
    assert out == [PING] * 3


def test_accepts_bytearray_and_memoryview_input() -> None:
    stream = encode_frame(PING) * 2
    decoder = FrameDecoder()
    assert decoder.feed(bytearray(stream[:30])) == []
    assert decoder.feed(memoryview(stream)[30:]) == [PING, PING]


def test_fault_carries_the_payloads_decoded_before_it() -> None:
    with pytest.raises(FramingError) as info:
        FrameDecoder().feed(encode_frame(PING) + encode_frame(b"{}") + b"XXXX")
    assert info.value.decoded == [PING, b"{}"]
    assert info.value.reason
