"""Netlink framing: iter_frames and iter_attributes, zero-copy and length checks."""

from __future__ import annotations

import struct

import pytest

from asyncroute._frame import (
    ATTR_HEADER,
    HEADER,
    NLA_TYPE_MASK,
    Frame,
    align,
    iter_attributes,
    iter_frames,
)
from asyncroute.errors import DecodeError


def frame(msg_type: int, payload: bytes, *, flags: int = 0, seq: int = 0, port: int = 0) -> bytes:
    """One frame, nlmsg_len = 16 + len(payload) (unpadded), then padding to 4 bytes."""
    data = struct.pack("=IHHII", 16 + len(payload), msg_type, flags, seq, port) + payload
    return data + b"\0" * (-len(data) % 4)


def attr(nla_type: int, value: bytes) -> bytes:
    data = struct.pack("=HH", 4 + len(value), nla_type) + value
    return data + b"\0" * (-len(data) % 4)


def test_layouts() -> None:
    assert HEADER.size == 16
    assert ATTR_HEADER.size == 4
    assert NLA_TYPE_MASK == 0x3FFF
    assert [align(n) for n in range(9)] == [0, 4, 4, 4, 4, 8, 8, 8, 8]


def test_one_frame_fields() -> None:
    data = frame(24, b"abcd", flags=0x605, seq=0xFFFF_FFFF, port=4242)
    (only,) = iter_frames(memoryview(data))
    assert only.type == 24
    assert only.flags == 0x605
    assert only.seq == 0xFFFF_FFFF
    assert only.port_id == 4242
    assert bytes(only.payload) == b"abcd"
    assert isinstance(only, Frame)


def test_payloads_are_views_of_the_original_buffer() -> None:
    buffer = bytearray(frame(24, b"first") + frame(25, b"second!") + frame(3, b"\0\0\0\0"))
    frames = list(iter_frames(memoryview(buffer)))
    assert [bytes(f.payload) for f in frames] == [b"first", b"second!", b"\0\0\0\0"]
    for f in frames:
        assert isinstance(f.payload, memoryview)
        assert f.payload.obj is buffer  # a slice, not a copy
    # Writing through the buffer shows up in the payload: the same memory.
    buffer[16] = ord("F")
    assert bytes(frames[0].payload) == b"First"


def test_payload_views_of_bytes() -> None:
    data = frame(24, b"xyz")
    (only,) = iter_frames(memoryview(data))
    assert only.payload.obj is data


def test_frames_with_padding() -> None:
    """Unaligned nlmsg_len: the next frame starts at the aligned offset, padding skipped."""
    payloads = [b"", b"a", b"ab", b"abc", b"abcd", b"abcde"]
    data = b"".join(frame(100 + i, p, seq=i) for i, p in enumerate(payloads))
    frames = list(iter_frames(memoryview(data)))
    assert [f.type for f in frames] == [100 + i for i in range(len(payloads))]
    assert [f.seq for f in frames] == list(range(len(payloads)))
    assert [bytes(f.payload) for f in frames] == payloads


def test_last_frame_without_its_padding() -> None:
    """A last frame whose padding is missing from the datagram is still complete."""
    data = frame(24, b"abcd") + frame(25, b"x")[:17]
    assert [bytes(f.payload) for f in iter_frames(memoryview(data))] == [b"abcd", b"x"]


def test_empty_datagram_has_no_frames() -> None:
    assert list(iter_frames(memoryview(b""))) == []


@pytest.mark.parametrize("size", range(1, 16))
def test_fewer_than_16_bytes(size: int) -> None:
    with pytest.raises(DecodeError):
        list(iter_frames(memoryview(frame(24, b"")[:size])))


@pytest.mark.parametrize("length", [0, 1, 4, 15])
def test_length_below_header_size(length: int) -> None:
    data = struct.pack("=IHHII", length, 24, 0, 0, 0) + b"\0" * 16
    with pytest.raises(DecodeError):
        list(iter_frames(memoryview(data)))


@pytest.mark.parametrize("excess", [1, 3, 4, 1000, 0xFFFF_FFFF - 20])
def test_length_past_the_end(excess: int) -> None:
    data = struct.pack("=IHHII", 20 + excess, 24, 0, 0, 0) + b"abcd"
    with pytest.raises(DecodeError):
        list(iter_frames(memoryview(data)))


def test_good_frames_come_before_the_error() -> None:
    """Frames before a bad one have been yielded when DecodeError is raised."""
    data = frame(24, b"good") + struct.pack("=IHHII", 99, 25, 0, 0, 0)
    seen: list[Frame] = []
    with pytest.raises(DecodeError):
        for f in iter_frames(memoryview(data)):
            seen.append(f)
    assert [bytes(f.payload) for f in seen] == [b"good"]


def test_trailing_partial_header_after_a_frame() -> None:
    with pytest.raises(DecodeError):
        list(iter_frames(memoryview(frame(24, b"abcd") + b"\x10\0\0\0")))


# --------------------------------------------------------------------------- attributes


def test_attributes_in_order_with_padding_and_flags() -> None:
    data = bytearray(
        b"HDR!"
        + attr(1, b"\xc6\x33\x64\x00")
        + attr(0x8008, b"")
        + attr(21, b"\x04")
        + attr(3, b"v0\0")
    )
    view = memoryview(data)
    items = list(iter_attributes(view, 4))
    assert [(t, bytes(v)) for t, v in items] == [
        (1, b"\xc6\x33\x64\x00"),
        (0x8008, b""),  # flag bits are kept; callers mask with NLA_TYPE_MASK
        (21, b"\x04"),
        (3, b"v0\0"),
    ]
    assert items[1][0] & NLA_TYPE_MASK == 8
    for _, value in items:
        assert value.obj is data  # zero copy


def test_last_attribute_without_its_padding() -> None:
    data = attr(1, b"abcd") + attr(21, b"\x04")[:5]
    assert [bytes(v) for _, v in iter_attributes(memoryview(data))] == [b"abcd", b"\x04"]


def test_no_attributes() -> None:
    assert list(iter_attributes(memoryview(b"abcd"), 4)) == []
    assert list(iter_attributes(memoryview(b""))) == []


@pytest.mark.parametrize("length", [0, 1, 2, 3])
def test_attribute_length_below_its_header(length: int) -> None:
    data = struct.pack("=HH", length, 1) + b"abcd"
    with pytest.raises(DecodeError):
        list(iter_attributes(memoryview(data)))


@pytest.mark.parametrize("length", [9, 12, 100, 0xFFFF])
def test_attribute_length_lies(length: int) -> None:
    """An nla_len that runs past the data."""
    data = attr(1, b"abcd") + struct.pack("=HH", length, 2) + b"abcd"
    with pytest.raises(DecodeError):
        list(iter_attributes(memoryview(data)))


@pytest.mark.parametrize("trailing", [1, 2, 3])
def test_trailing_bytes_after_attributes(trailing: int) -> None:
    data = attr(1, b"abcd") + b"\0" * trailing
    with pytest.raises(DecodeError):
        list(iter_attributes(memoryview(data)))


@pytest.mark.parametrize("trailing", [1, 2, 3])
def test_trailing_bytes_without_attributes(trailing: int) -> None:
    with pytest.raises(DecodeError):
        list(iter_attributes(memoryview(b"\0" * trailing)))
