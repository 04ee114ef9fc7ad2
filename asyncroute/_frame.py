"""Netlink framing: the 16-byte header, 4-byte alignment, frames and attributes.

Invariants:
- Nothing here copies payload bytes: frames and attributes are ``memoryview`` slices of
  the datagram they came from.
- Every length read from the wire is checked before it is used; anything that does not
  add up raises :class:`~asyncroute.errors.DecodeError` and nothing else.
- The header layout is derived from pyroute2's ``nlmsg.header`` (host byte order, as the
  kernel writes it).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

from pyroute2.netlink import nlmsg

from .errors import DecodeError

__all__ = [
    "ATTR_HEADER",
    "HEADER",
    "NLA_TYPE_MASK",
    "Frame",
    "align",
    "iter_attributes",
    "iter_frames",
]

#: ``struct nlmsghdr``: length, type, flags, seq, port id.
HEADER = struct.Struct("=" + "".join(fmt for _, fmt in nlmsg.header))
#: ``struct nlattr``: length, type.
ATTR_HEADER = struct.Struct("=HH")
#: ``nla_type`` without NLA_F_NESTED (0x8000) and NLA_F_NET_BYTEORDER (0x4000).
NLA_TYPE_MASK = 0x3FFF

_HEADER_SIZE = HEADER.size
_ATTR_HEADER_SIZE = ATTR_HEADER.size
_unpack_header = HEADER.unpack_from
_unpack_attr = ATTR_HEADER.unpack_from


def align(length: int) -> int:
    """Round ``length`` up to netlink's 4-byte alignment (``NLMSG_ALIGN``/``NLA_ALIGN``)."""
    return (length + 3) & ~3


class Frame(NamedTuple):
    """One netlink message inside a datagram; ``payload`` excludes the header."""

    type: int
    flags: int
    seq: int
    port_id: int
    payload: memoryview


def iter_frames(data: memoryview) -> Iterator[Frame]:
    """Yield the frames of one datagram in order.

    Raises DecodeError on a short header, a length below 16 or past the datagram.  Frames
    before the bad one have already been yielded: a caller can act on them.
    """
    offset = 0
    end = len(data)
    while offset < end:
        if end - offset < _HEADER_SIZE:
            raise DecodeError(f"truncated netlink header at byte {offset}")
        length, msg_type, flags, seq, port_id = _unpack_header(data, offset)
        if length < _HEADER_SIZE:
            raise DecodeError(f"netlink length {length} < {_HEADER_SIZE} at byte {offset}")
        if offset + length > end:
            raise DecodeError(
                f"netlink length {length} at byte {offset} runs past the datagram ({end})"
            )
        yield Frame(msg_type, flags, seq, port_id, data[offset + _HEADER_SIZE : offset + length])
        offset += (length + 3) & ~3


def iter_attributes(data: memoryview, offset: int = 0) -> Iterator[tuple[int, memoryview]]:
    """Yield ``(nla_type, value)`` for the attributes in ``data[offset:]``.

    ``nla_type`` keeps its flag bits; mask with :data:`NLA_TYPE_MASK` to compare.
    """
    end = len(data)
    while offset < end:
        if end - offset < _ATTR_HEADER_SIZE:
            # The kernel pads to 4 bytes, so fewer than 4 trailing bytes is garbage.
            raise DecodeError(f"truncated attribute header at byte {offset}")
        length, nla_type = _unpack_attr(data, offset)
        if length < _ATTR_HEADER_SIZE or offset + length > end:
            raise DecodeError(f"attribute length {length} at byte {offset} does not fit in {end}")
        yield nla_type, data[offset + _ATTR_HEADER_SIZE : offset + length]
        offset += (length + 3) & ~3
